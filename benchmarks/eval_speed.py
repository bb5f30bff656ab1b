"""How long does full-ranking evaluation take on Gowalla-sized data?

Case: every Gowalla user (29,858) against every item (40,981) with random
64-d float32 embeddings, ``score_fn = lambda u: U[u] @ V.T``, the ~810k
training pairs masked, top-20, all six ranking metrics at K = 10 and 20.
The users x items product and the top-k alone are the floor (the named
peer, measured in the same run); the table shows what masking, the
membership test and the metric math add on top, per user batch size.

Other processes may share the CPU, so every timing is repeated and the
minimum is reported (the median is kept in the JSON).

    python benchmarks/eval_speed.py            # the Gowalla-sized case
    python benchmarks/eval_speed.py --smoke    # tiny synthetic run (CI)

Writes ``benchmarks/results/eval_speed.json`` and ``eval_speed.md``
(``eval_speed_smoke.*`` with ``--smoke``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from pyg_recsys.metrics import RankingMetrics, evaluate_ranking
from pyg_recsys.ops import topk
from pyg_recsys.ops.csr import CSR

HERE = Path(__file__).resolve().parent
GOWALLA = ('gowalla-lightgcn', 29858, 40981)  # name, users, items


def data_root() -> Path:
    env = os.environ.get('PYG_RECSYS_DATA')
    return Path(env) if env else HERE.parent.parent / 'shared' / 'datasets'


def read_lightgcn(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """``user item item ...`` lines -> (users, items) pair vectors."""
    rows, cols = [], []
    with open(path) as f:
        for line in f:
            ids = line.split()
            if len(ids) > 1:
                items = [int(i) for i in ids[1:]]
                rows.extend([int(ids[0])] * len(items))
                cols.extend(items)
    return torch.tensor(rows), torch.tensor(cols)


def synthetic(num_users: int, num_items: int, per_user: int, seed: int
              ) -> tuple[CSR, CSR]:
    """Random train/test sets with about ``per_user`` training items and
    a quarter as many test items per user (Gowalla's ratio)."""
    gen = torch.Generator().manual_seed(seed)
    n_train, n_test = num_users * per_user, max(num_users * per_user // 4,
                                                num_users)
    rows = torch.randint(0, num_users, (n_train,), generator=gen)
    cols = torch.randint(0, num_items, (n_train,), generator=gen)
    train = CSR.from_pairs(rows, cols, num_users, num_items)
    rows = torch.cat([torch.arange(num_users),
                      torch.randint(0, num_users, (n_test - num_users,),
                                    generator=gen)])
    cols = torch.randint(0, num_items, (n_test,), generator=gen)
    test = CSR.from_pairs(rows, cols, num_users, num_items)
    return train, test


def load_case(smoke: bool, seed: int) -> tuple[CSR, CSR, str]:
    if smoke:
        return (*synthetic(300, 500, 20, seed), 'synthetic 300 x 500')
    name, num_users, num_items = GOWALLA
    raw = data_root() / name / 'raw'
    if (raw / 'train.txt').exists() and (raw / 'test.txt').exists():
        train = CSR.from_pairs(*read_lightgcn(raw / 'train.txt'), num_users,
                               num_items)
        test = CSR.from_pairs(*read_lightgcn(raw / 'test.txt'), num_users,
                              num_items)
        return train, test, f'Gowalla ({raw})'
    return (*synthetic(num_users, num_items, 27, seed),
            'synthetic, Gowalla-sized (staged files not found)')


def best_of(fn, repeats: int) -> tuple[float, float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), out


def run_floor(score_fn, users, k, bs):
    """The peer: users x items product and top-k, nothing else."""
    for chunk in users.split(bs):
        torch.topk(score_fn(chunk), k, dim=1)


def run_breakdown(score_fn, users, train, test, ks, bs) -> dict[str, float]:
    """evaluate_ranking's steps (see pyg_recsys.ops.topk._chunked), timed
    one by one."""
    t = dict(score=0.0, mask=0.0, topk=0.0, metrics=0.0)
    acc = RankingMetrics(ks)
    clock = time.perf_counter
    with torch.no_grad():
        for group in users.split(max(topk.GROUP_USERS, bs)):
            t0 = clock()
            mask = topk._GroupMask(train, group)
            t['mask'] += clock() - t0
            items = []
            for start in range(0, group.numel(), bs):
                chunk = group[start:start + bs]
                t0 = clock()
                scores = score_fn(chunk)
                t1 = clock()
                mask.fill_(scores, start, start + chunk.numel())
                t2 = clock()
                items.append(topk._topk_pad(scores, acc.max_k)[1])
                del scores
                t3 = clock()
                t['score'] += t1 - t0
                t['mask'] += t2 - t1
                t['topk'] += t3 - t2
            t0 = clock()
            acc.update(torch.cat(items), group, test)
            t['metrics'] += clock() - t0
    t0 = clock()
    acc.compute()
    t['metrics'] += clock() - t0
    return t


def markdown(record: dict) -> list[str]:
    """The markdown report of one run (an ``eval_speed.json`` record:
    ``meta`` and ``results``)."""
    meta, results = record['meta'], record['results']
    lines = [
        '# Full-ranking evaluation speed', '',
        f'{meta["case"]}: {meta["num_eval_users"]:,} users x '
        f'{meta["num_items"]:,} items, {meta["num_train_pairs"]:,} training '
        f'pairs masked, {meta["dim"]}-d random embeddings '
        f'(`score_fn = lambda u: U[u] @ V.T`), top-{max(meta["ks"])}, 6 '
        f'metrics at K={meta["ks"]}. torch {meta["torch"]}, '
        f'{meta["torch_threads"]} threads on {meta["cpu_count"]} cores '
        f'({meta["machine"]}). {meta["repeats"]} repeats, round-robin over '
        f'the batch sizes (the CPU is shared with other processes; load '
        f'average after the run: '
        f'{", ".join(f"{x:.1f}" for x in meta["load_avg_after"])}).', '',
        'Peer: `matmul+topk` = the same `score_fn` and `torch.topk` alone, '
        'nothing masked or measured. `evaluate_ranking` = our full '
        'evaluation. The breakdown times its steps in a separate run '
        '(score = `score_fn`, mask = exclusion lookup and fill, metrics = '
        'membership test and all metric math).', '',
        '| batch | matmul+topk (s) | evaluate_ranking (s) | ratio | '
        'score | mask | topk | metrics | median matmul+topk | '
        'median evaluate |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for label, r in results.items():
        part = r['breakdown_min_s']
        lines.append(
            f'| {label} | {r["floor_s"]:.3f} | {r["evaluate_s"]:.3f} | '
            f'{r["evaluate_s"] / r["floor_s"]:.2f} | {part["score"]:.3f} | '
            f'{part["mask"]:.3f} | {part["topk"]:.3f} | '
            f'{part["metrics"]:.3f} | {r["floor_median_s"]:.3f} | '
            f'{r["evaluate_median_s"]:.3f} |')
    lines += [
        '', 'Columns 2-8 are minima over the repeats (the machine at its '
        'quietest); the last two are medians, which show how each batch '
        'size fares while other processes oversubscribe the cores. '
        '`auto` (the default, about 2^22 scores = 16 MiB per chunk) keeps '
        'each chunk in cache and lets the allocator reuse its memory; '
        'larger chunks are page-faulted in afresh (glibc mmap) every time. '
        'Many small chunks mean many parallel regions, each of which can '
        'wait a scheduler time slice on an oversubscribed CPU: there, pass '
        'a larger batch_size (e.g. 4096) or limit the threads.', '',
        'Metrics identical across batch sizes: '
        f'{meta["metrics_identical_across_batch_sizes"]}.',
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--smoke', action='store_true',
                        help='tiny synthetic case, one repeat (CI)')
    parser.add_argument('--batch-sizes', nargs='+',
                        default=['auto', 256, 1024, 4096, 8192],
                        help="users per chunk; 'auto' = the library default")
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--dim', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', type=Path, default=HERE / 'results')
    parser.add_argument('--render', type=Path, default=None,
                        help='only re-render the markdown of a saved JSON')
    args = parser.parse_args()
    if args.render is not None:
        saved = json.loads(args.render.read_text())
        text = '\n'.join(markdown(saved)) + '\n'
        args.render.with_suffix('.md').write_text(text)
        print(text)
        return
    if args.smoke:
        args.batch_sizes, args.repeats = ['auto', 64, 1024], 1

    torch.manual_seed(args.seed)
    train, test, source = load_case(args.smoke, args.seed)
    num_users, num_items = train.num_rows, train.num_cols
    users = (test.degree() > 0).nonzero().view(-1)
    U = torch.randn(num_users, args.dim)
    V = torch.randn(num_items, args.dim)
    ks = (10, 20)

    def score_fn(u):
        return U[u] @ V.T

    configs = []
    for name in args.batch_sizes:
        bs = (topk.auto_batch_size(num_items) if name == 'auto'
              else int(name))
        configs.append((f'{bs} (auto)' if name == 'auto' else str(bs), bs,
                        None if name == 'auto' else bs))
    times = {label: dict(floor=[], full=[], parts=[], out=None)
             for label, _, _ in configs}
    # Round-robin over the configurations, so that each one is sampled
    # across the whole run (the load from other processes comes and goes).
    for rep in range(args.repeats):
        for label, bs, arg in configs:
            t = times[label]
            t0 = time.perf_counter()
            run_floor(score_fn, users, max(ks), bs)
            t['floor'].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            t['out'] = evaluate_ranking(score_fn, test, train, ks=ks,
                                        batch_size=arg)
            t['full'].append(time.perf_counter() - t0)
            t['parts'].append(run_breakdown(score_fn, users, train, test,
                                            ks, bs))
            print(f'repeat {rep + 1}/{args.repeats} batch {label:>10s}: '
                  f'matmul+topk {t["floor"][-1]:6.3f}s  evaluate_ranking '
                  f'{t["full"][-1]:6.3f}s', flush=True)

    results = {}
    for label, bs, _ in configs:
        t = times[label]
        floor, full = min(t['floor']), min(t['full'])
        part = {k: min(p[k] for p in t['parts']) for k in t['parts'][0]}
        results[label] = dict(
            batch_size=bs, floor_s=floor,
            floor_median_s=statistics.median(t['floor']), evaluate_s=full,
            evaluate_median_s=statistics.median(t['full']),
            floor_all_s=t['floor'], evaluate_all_s=t['full'],
            breakdown_min_s=part, metrics=t['out'])

    metric_sets = [r['metrics'] for r in results.values()]
    identical = all(m == metric_sets[0] for m in metric_sets)
    meta = dict(
        case=source, num_users=num_users, num_eval_users=int(users.numel()),
        num_items=num_items, num_train_pairs=train.nnz,
        num_test_pairs=test.nnz, dim=args.dim, ks=list(ks),
        repeats=args.repeats, machine=platform.processor() or
        platform.machine(), cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(), torch=torch.__version__,
        load_avg_after=os.getloadavg(),
        metrics_identical_across_batch_sizes=identical,
        note='min over repeats; the CPU is shared with other processes')
    args.out.mkdir(parents=True, exist_ok=True)
    stem = 'eval_speed_smoke' if args.smoke else 'eval_speed'
    with open(args.out / f'{stem}.json', 'w') as f:
        json.dump(dict(meta=meta, results=results), f, indent=2)

    text = '\n'.join(markdown(dict(meta=meta, results=results))) + '\n'
    (args.out / f'{stem}.md').write_text(text)
    print(text)


if __name__ == '__main__':
    main()
