"""Seconds per training epoch of the session / sequence models on Beauty,
against RecBole 1.2.1's SASRec, GRU4Rec and SRGNN measured in the same run,
with the quality both reach after the same number of epochs.

Protocol (the peer's, ``../shared/peers/recbole_seq.py``): the S3Rec
``Beauty.txt`` (22,363 users, 12,101 items), leave-one-out (last item test,
second-to-last validation), full ranking over all items with nothing
masked, softmax cross-entropy over all items, sequences cut to the last 50
steps, batch 256, Adam lr 1e-3, RecBole's default sizes (SASRec: d 64, 2
blocks, 2 heads, inner 256, dropout 0.5; GRU4Rec: d 64, hidden 128,
dropout 0.3; SRGNN: d 64, one step).  Both sides train ``--epochs`` epochs
and then score the test part once with the final weights.

RecBole trains on one example per prefix (131,413 per epoch).  Ours runs
through ``pyg-recsys train``, on the same prefix examples; SASRec also in
RecBole's post-norm layout (``--post-norm``: the like-for-like row) and
SASRec and GRU4Rec also on one example per user with a target after every
step (the same 131,413 targets, the causal encoder run once per sequence,
~6x fewer optimizer steps per epoch).  Our batches come from length-bucketed
shuffles (``--bucket 20``); RecBole pads every sequence to 50.

    python benchmarks/session_speed_beauty.py              # ~30 min here
    python benchmarks/session_speed_beauty.py --models srgnn --epochs 1
    python benchmarks/session_speed_beauty.py --smoke      # no peer

Needs RecBole's environment (``bash ../shared/peers/recbole_env.sh``,
``/tmp/recbole-venv``; ``--recbole-python`` to point elsewhere).  Writes
``benchmarks/results/session_speed_beauty.{json,md}``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, write_results  # benchmarks/, beside this

HERE = Path(__file__).resolve().parent
# ../shared beside the checkout (or $PYG_RECSYS_SHARED)
SHARED = Path(os.environ.get('PYG_RECSYS_SHARED',
                             HERE.parent.parent / 'shared'))
PEER = SHARED / 'peers' / 'recbole_seq.py'
BEAUTY = SHARED / 'datasets' / 'beauty-s3rec' / 'raw'
COMMON = ['--batch-size', '256', '--lr', '1e-3', '--dim', '64',
          '--max-len', '50', '--loss', 'ce', '--bucket', '20']
# (label, peer model, our CLI arguments)
RUNS = {
    'sasrec': ('SASRec', [
        ('sasrec, post-norm (RecBole layout), prefix examples', [
            '--model', 'sasrec', '--blocks', '2', '--heads', '2',
            '--dropout', '0.5', '--train-mode', 'prefix', '--post-norm']),
        ('sasrec, pre-norm (paper), prefix examples', [
            '--model', 'sasrec', '--blocks', '2', '--heads', '2',
            '--dropout', '0.5', '--train-mode', 'prefix']),
        ('sasrec, pre-norm, one example per sequence', [
            '--model', 'sasrec', '--blocks', '2', '--heads', '2',
            '--dropout', '0.5'])]),
    'gru4rec': ('GRU4Rec', [
        ('gru4rec, prefix examples', [
            '--model', 'gru4rec', '--hidden', '128', '--dropout', '0.3',
            '--train-mode', 'prefix']),
        ('gru4rec, one example per sequence', [
            '--model', 'gru4rec', '--hidden', '128', '--dropout', '0.3'])]),
    'srgnn': ('SRGNN', [
        ('srgnn', ['--model', 'srgnn', '--steps', '1'])]),
}
KEYS = ('hit@10', 'ndcg@10', 'hit@20', 'ndcg@20')


def run_peer(python: str, model: str, data: Path, epochs: int,
             work: Path) -> dict:
    cmd = [python, str(PEER), str(data / 'Beauty.txt'), str(work), model,
           str(epochs)]
    print('$', ' '.join(cmd), flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    line = [x for x in out.stdout.splitlines() if x.startswith('{')][-1]
    return json.loads(line)


def run_ours(cli_args: list[str], data: Path, epochs: int,
             work: Path) -> dict:
    out = work / 'run'
    cmd = [sys.executable, '-m', 'pyg_recsys.cli', '-q', 'train',
           '--dataset', 'beauty', '--raw-dir', str(data), '--epochs',
           str(epochs), '--eval-every', str(epochs), '--out', str(out),
           '--no-progress', *COMMON, *cli_args]
    print('$', ' '.join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    result = json.loads((out / 'metrics.json').read_text())
    secs = [e['train_seconds'] for e in result['epochs']]
    return dict(epoch_s=sum(secs) / len(secs), epoch_seconds=secs,
                train_examples=result['task']['num_train'],
                **{k: result['test'][k] for k in KEYS})


def write_smoke_data(folder: Path) -> Path:
    import random
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / 'Beauty.txt', 'w') as f:
        for u in range(60):
            n = rng.randint(4, 12)
            f.write(' '.join([str(u + 1)] + [str(rng.randint(1, 40))
                                             for _ in range(n)]) + '\n')
    return folder


def markdown(record: dict) -> list[str]:
    """The markdown table of a ``session_speed_beauty*.json`` record."""
    md = ['# Session models on Beauty: speed and quality against RecBole',
          '', 'Beauty (S3Rec file), leave-one-out, full ranking over all '
          'items, CE, max len 50; test after '
          f"{record['epochs']} epoch(s); peer: RecBole 1.2.1 in the same "
          'run (published figure: none, a speed benchmark). Machine: '
          f"{record['machine']}, OMP_NUM_THREADS "
          f"{record['threads'] or 'unset'}; "
          f"load average {record['load_before']:.1f} before, "
          f"{record['load_after']:.1f} after.",
          '',
          '| model | RecBole s/epoch | ours s/epoch | speed-up | '
          'RecBole hit@10 / ndcg@10 | ours hit@10 / ndcg@10 |',
          '|---|---:|---:|---:|---|---|']
    for r in record['rows']:
        o, q = r['ours'], r['peer']
        if q is None:
            md.append(f"| {r['model']} | - | {o['epoch_s']:.1f} | - | - | "
                      f"{o['hit@10']:.4f} / {o['ndcg@10']:.4f} |")
            continue
        md.append(f"| {r['model']} | {q['epoch_s']:.1f} | "
                  f"{o['epoch_s']:.1f} | {q['epoch_s'] / o['epoch_s']:.2f}x "
                  f"| {q['hit@10']:.4f} / {q['ndcg@10']:.4f} | "
                  f"{o['hit@10']:.4f} / {o['ndcg@10']:.4f} |")
    return md


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--models', nargs='+', default=list(RUNS),
                   choices=list(RUNS))
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--raw-dir', type=Path, default=BEAUTY)
    p.add_argument('--recbole-python', default='/tmp/recbole-venv/bin/python')
    p.add_argument('--no-peer', action='store_true')
    p.add_argument('--smoke', action='store_true',
                   help='tiny synthetic file, one epoch, no peer')
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix='session_speed_'))
    data = args.raw_dir
    if args.smoke:
        data, args.epochs, args.no_peer = write_smoke_data(tmp / 'raw'), 1, \
            True
    elif not (data / 'Beauty.txt').exists():
        raise SystemExit(f'session_speed_beauty: {data}/Beauty.txt not '
                         f'found; stage beauty-s3rec or pass --raw-dir')
    if not args.no_peer and not Path(args.recbole_python).exists():
        raise SystemExit(f'session_speed_beauty: {args.recbole_python} not '
                         f'found; run bash {SHARED}/peers/recbole_env.sh '
                         f'or pass --no-peer')
    load0 = os.getloadavg()[0]
    rows = []
    for name in args.models:
        peer_model, ours = RUNS[name]
        peer = None
        if not args.no_peer:
            peer = run_peer(args.recbole_python, peer_model, data,
                            args.epochs, tmp / f'recbole_{name}')
            print(json.dumps(peer), flush=True)
        for label, cli_args in ours:
            t0 = time.perf_counter()
            mine = run_ours(cli_args, data, args.epochs, tmp / label.replace(
                ' ', '_').replace(',', ''))
            mine['wall_s'] = time.perf_counter() - t0
            print(label, json.dumps(mine), flush=True)
            rows.append(dict(model=label, peer=peer, ours=mine))
    record = dict(machine=machine(), epochs=args.epochs,
                  load_before=load0, load_after=os.getloadavg()[0],
                  threads=os.environ.get('OMP_NUM_THREADS'),
                  protocol='Beauty (S3Rec), leave-one-out, full ranking, '
                  'nothing masked, CE, max length 50, batch 256, lr 1e-3',
                  rows=rows)
    md = markdown(record)
    stem = 'session_speed_beauty'
    if set(args.models) != set(RUNS):  # a partial run keeps its own file
        stem += '_' + '_'.join(args.models)
    write_results(HERE / 'results', stem, record, md, smoke=args.smoke)


if __name__ == '__main__':
    main()
