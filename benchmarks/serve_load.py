"""A bounded load test of ``pyg-recsys serve`` on loopback: throughput,
latency percentiles, errors, and the answers checked against the Python
API.

The server runs in its own process (``python -m pyg_recsys serve --run
DIR --port 0``) on the LightGCN Gowalla run of
``retrieval_gowalla.py`` (trained there first when missing); this
process opens ``--connections`` keep-alive HTTP/1.1 connections
(``http.client``, one thread each) and sends ``--requests`` ``GET
/recommend?user=ID&k=20`` requests in all, users drawn uniformly (seeded)
from the run's users.  Every answer must be 200 and list the same items
as ``load_run(DIR).recommend(user=ID, k=20)`` in this process; scores
must agree to 1e-6.  The two processes share the machine's cores.

    python benchmarks/serve_load.py
    python benchmarks/serve_load.py --requests 2000 --connections 4
    python benchmarks/serve_load.py --smoke

Writes ``benchmarks/results/serve_load.{json,md}``.
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine, write_results  # noqa: E402
from retrieval_gowalla import trained_run  # noqa: E402

K = 20


def _client(host: str, port: int, users: list[str], out: list, errors: list
            ) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    for user in users:
        t0 = time.perf_counter()
        try:
            conn.request('GET', f'/recommend?user={user}&k={K}')
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as e:
            errors.append(f'{user}: {type(e).__name__} {e}')
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=60)
            continue
        latency = time.perf_counter() - t0
        if resp.status != 200:
            errors.append(f'{user}: HTTP {resp.status} {body[:200]!r}')
            continue
        out.append((user, latency, json.loads(body)))
    conn.close()


def measure(run_dir: Path, requests: int, connections: int, seed: int
            ) -> dict:
    from pyg_recsys.serving import load_run
    run = load_run(run_dir)
    gen = torch.Generator().manual_seed(seed)
    raw_users = run.ids['user']
    pick = torch.randint(len(raw_users), (requests,), generator=gen)
    users = [str(raw_users[i]) for i in pick.tolist()]
    proc = subprocess.Popen(
        [sys.executable, '-m', 'pyg_recsys', '-q', 'serve', '--run',
         str(run_dir), '--port', '0'], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith('serving '):
            raise RuntimeError(f'the server did not start: {line}'
                               f'{proc.stderr.read()}')
        url = line.split(' at ')[1].split(' ')[0]
        host, port = url.removeprefix('http://').split(':')
        # one warm-up request builds the server's cached embeddings
        warm = http.client.HTTPConnection(host, int(port), timeout=120)
        warm.request('GET', '/health')
        health = json.loads(warm.getresponse().read())
        warm.request('GET', f'/recommend?user={users[0]}&k={K}')
        warm.getresponse().read()
        warm.close()
        shares = [users[c::connections] for c in range(connections)]
        results: list = []
        errors: list = []
        threads = [threading.Thread(target=_client, args=(
            host, int(port), share, results, errors)) for share in shares]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # the same answers as the Python API, user by user
    mismatches = 0
    expected: dict[str, list] = {}
    for user, _, body in results:
        if user not in expected:
            expected[user] = run.recommend(user=user, k=K)
        want = expected[user]
        got = [(d['item'], d['score']) for d in body['items']]
        if [str(i) for i, _ in got] != [str(i) for i, _ in want] or any(
                abs(a[1] - b[1]) > 1e-6 for a, b in zip(got, want)):
            mismatches += 1
    lat = sorted(r[1] for r in results)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3

    return dict(machine=machine(), server=health,
                case=dict(requests=requests, connections=connections, k=K,
                          distinct_users=len(set(users)), seed=seed,
                          dataset=run.args.dataset, model=run.args.model),
                ok=len(results), errors=len(errors),
                error_examples=errors[:5], mismatches=mismatches,
                checked=len(results), wall_s=wall,
                throughput_rps=len(results) / wall,
                p50_ms=pct(0.50), p90_ms=pct(0.90), p99_ms=pct(0.99),
                max_ms=lat[-1] * 1e3, mean_ms=statistics.fmean(lat) * 1e3,
                measured=time.strftime('%Y-%m-%d'))


def markdown(record: dict) -> list[str]:
    """The markdown table of a ``serve_load.json`` record."""
    c = record['case']
    return [
        '# HTTP serving: a bounded load test on loopback', '',
        f"The serve command ({c['model']} on {c['dataset']}, one "
        f"process) and a client of {c['connections']} keep-alive "
        f"connections sending {c['requests']:,} `GET /recommend?user=ID"
        f"&k={c['k']}` ({c['distinct_users']:,} distinct users), both on "
        f"this machine ({record['machine']}). Every answer checked against "
        f"`load_run(...).recommend` in Python. Measured "
        f"{record['measured']}. Published figure: none.", '',
        '| requests | connections | throughput (req/s) | p50 (ms) | '
        'p99 (ms) | max (ms) | errors | answers differing from Python |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|',
        f"| {c['requests']:,} | {c['connections']} | "
        f"{record['throughput_rps']:,.0f} | {record['p50_ms']:.1f} | "
        f"{record['p99_ms']:.1f} | {record['max_ms']:.1f} | "
        f"{record['errors']} | {record['mismatches']} of "
        f"{record['checked']:,} |"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--requests', type=int, default=10_000)
    p.add_argument('--connections', type=int, default=16)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--epochs', type=int, default=10,
                   help='epochs of the Gowalla run (retrieval_gowalla.py\'s '
                        'run folder, resumed)')
    p.add_argument('--runs', type=Path, default=HERE.parent / 'runs'
                   / 'bench')
    p.add_argument('--out', type=Path, default=HERE / 'results')
    p.add_argument('--smoke', action='store_true',
                   help='LightGCN on MovieLens-100K, 1 epoch, 200 requests '
                        'over 4 connections, in a temporary folder')
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke:
            args.requests, args.connections = 200, 4
        run_dir = trained_run(args.runs, args.epochs, Path(tmp), args.smoke)
        record = measure(run_dir, args.requests, args.connections,
                         args.seed)
    record['smoke'] = args.smoke
    write_results(args.out, 'serve_load', record, markdown(record),
                  smoke=args.smoke)
    if record['errors'] or record['mismatches']:
        raise SystemExit(f"{record['errors']} errors, "
                         f"{record['mismatches']} answers differing from "
                         f"the Python API")


if __name__ == '__main__':
    main()
