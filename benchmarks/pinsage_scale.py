"""PinSage against full-graph LightGCN on synthetic graphs grown 1x, 10x
and 100x from Gowalla's degree distributions: seconds per training step
and per epoch, and peak memory of training.

A graph of scale ``s`` has ``s`` times Gowalla's users and items (29,858
and 40,981 at 1x): every user draws a degree from Gowalla's user degrees,
every item a weight from Gowalla's item degrees, and each user's items
are drawn in proportion to the item weights (repeats dropped).  Both
models are built by the CLI's name table (d = 64; LightGCN 3 layers,
batch 2048, one uniform negative; PinSage 2 layers, T = 10, 50 walks,
batch 512, 500 shared negatives, batches built in the training process)
and trained with Adam.  Each (model, scale) runs in its own process: the
peak resident memory (``VmHWM``) is reset after the graph is loaded, so
it counts what training adds to the graph; the step time is the mean of
``--steps`` steps after ``--warmup``; the epoch time is that times the
batches of one pass over the training pairs.  ``--max-gb`` is the
memory a run may use (a process over it is stopped and reported as not
fitting).

    python benchmarks/pinsage_scale.py
    python benchmarks/pinsage_scale.py --scales 1 10 --steps 5
    python benchmarks/pinsage_scale.py --smoke

Writes ``benchmarks/results/pinsage_scale.{json,md}``.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import (  # benchmarks/, beside this
    keep_other_rows,
    machine,
    write_results,
)
from torch import Tensor

HERE = Path(__file__).resolve().parent
MODELS = {'lightgcn': ['--layers', '3', '--batch-size', '2048'],
          'pinsage': ['--batch-size', '512']}


def gowalla_degrees(raw_dir: str | None, root: str | None
                    ) -> tuple[Tensor, Tensor]:
    """Gowalla's user and item degrees (all of ``train.txt``)."""
    from pyg_recsys.datasets import LightGCNDataset
    ds = LightGCNDataset(root=root, name='gowalla', raw_dir=raw_dir)
    split = ds.split(val_ratio=0.0)
    u = torch.bincount(split.train[0], minlength=split.num_users)
    i = torch.bincount(split.train[1], minlength=split.num_items)
    return u, i


def grow(user_deg: Tensor, item_deg: Tensor, scale: int,
         seed: int = 0) -> tuple[Tensor, int, int]:
    """``[2, E]`` pairs of a graph ``scale`` times Gowalla's size."""
    gen = torch.Generator().manual_seed(seed)
    num_u, num_i = user_deg.numel() * scale, item_deg.numel() * scale
    deg = user_deg[torch.randint(user_deg.numel(), (num_u,), generator=gen)]
    weight = item_deg[torch.randint(item_deg.numel(), (num_i,),
                                    generator=gen)].double()
    cdf = torch.cumsum(weight, 0)
    cdf /= cdf[-1].clone()
    users = torch.repeat_interleave(torch.arange(num_u), deg)
    items = torch.searchsorted(cdf, torch.rand(users.numel(), generator=gen,
                                               dtype=torch.float64))
    items.clamp_(max=num_i - 1)
    key = torch.unique(users * num_i + items)
    return torch.stack([key // num_i, key % num_i]), num_u, num_i


def _rss_gb(field: str) -> float:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1]) / 2**20
    return float('nan')


def worker(model_name: str, graph_path: str, steps: int, warmup: int
           ) -> dict:
    """One (model, graph) measurement, in its own process."""
    from pyg_recsys.cli import build_loader, build_model, parse_train_args
    from pyg_recsys.data.split import fixed_split
    g = torch.load(graph_path, weights_only=True)
    pairs, num_u, num_i = g['pairs'], g['num_users'], g['num_items']
    split = fixed_split(pairs[:, 1:], pairs[:, :1], num_u, num_i,
                        val_ratio=0.0)
    graph_gb = _rss_gb('VmRSS')
    Path('/proc/self/clear_refs').write_text('5')  # reset VmHWM
    t0 = time.perf_counter()
    args = parse_train_args(['--model', model_name, '--dataset', 'gowalla',
                             '--out', '-', *MODELS[model_name]])
    model = build_model(args, split)
    loader = build_loader(args, split, model)
    build_s = time.perf_counter() - t0
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def forever():
        epoch = 1
        while True:
            loader.set_epoch(epoch)
            yield from loader
            epoch += 1

    it = forever()
    for s in range(warmup + steps):
        if s == warmup:
            t1 = time.perf_counter()
        batch = next(it)
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
    sec = (time.perf_counter() - t1) / steps
    return dict(model=model_name, users=num_u, items=num_i,
                pairs=int(pairs.size(1)), sec_per_step=sec,
                batches_per_epoch=len(loader), epoch_s=sec * len(loader),
                build_s=build_s, graph_gb=graph_gb,
                train_peak_gb=_rss_gb('VmHWM'), fits=True)


def run_one(model_name: str, graph_path: Path, args) -> dict:
    cmd = [sys.executable, __file__, '--worker', model_name,
           str(graph_path), '--steps', str(args.steps), '--warmup',
           str(args.warmup)]
    limit = int(args.max_gb * 2**30)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.run(cmd, capture_output=True, text=True,
                          preexec_fn=cap, cwd=HERE)
    for line in proc.stdout.splitlines():
        if line.startswith('RESULT '):
            return json.loads(line[7:])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
    error = tail[0][:200] if tail else f'exit {proc.returncode}'
    if not any(m in error for m in ('MemoryError', 'bad_alloc',
                                    'not enough memory')) and \
            proc.returncode != -9:
        raise RuntimeError(f'{model_name} worker failed: {proc.stderr}')
    return dict(model=model_name, fits=False, error=error)


def markdown(record: dict) -> list[str]:
    """The markdown table of a ``pinsage_scale.json`` record."""
    mach = record['machine']
    md = ['# PinSage vs full-graph LightGCN as the graph grows', '',
          f'Protocol: synthetic graphs 1x / 10x / 100x Gowalla\'s users and '
          f'items with its degree distributions; one process per (model, '
          f'scale), at most {record["max_gb"]:g} GB of address space; '
          f'mean of {record["steps"]} steps after {record["warmup"]}; an '
          'epoch is one pass over the training pairs; peak memory is the '
          'process\'s peak resident size from the moment the graph is '
          'loaded (VmHWM reset then), and what training adds to the '
          'graph\'s. '
          f'{mach["cpus"]} cores, torch {mach["torch"]}; measured '
          f'{record["date"]}. Published figure: none (a scale benchmark; '
          'LightGCN measured in the same run).', '',
          '| scale | users | items | pairs | model | s / step | steps / '
          'epoch | s / epoch | peak GB | added by training GB |',
          '|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|']
    for r in record['rows']:
        if not r['fits']:
            md.append(f'| {r["scale"]}x | | | | {r["model"]} | did not '
                      f'fit: {r["error"]} | | | | |')
            continue
        md.append(f'| {r["scale"]}x | {r["users"]:,} | {r["items"]:,} | '
                  f'{r["pairs"]:,} | {r["model"]} | {r["sec_per_step"]:.3f}'
                  f' | {r["batches_per_epoch"]:,} | {r["epoch_s"]:,.0f} | '
                  f'{r["train_peak_gb"]:.2f} | '
                  f'{r["train_peak_gb"] - r["graph_gb"]:.2f} |')
    return md


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--scales', type=int, nargs='+', default=[1, 10, 100])
    p.add_argument('--models', nargs='+', default=list(MODELS),
                   choices=list(MODELS))
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--max-gb', type=float, default=20.0)
    p.add_argument('--root', default=None)
    p.add_argument('--raw-dir', default=None)
    p.add_argument('--results', type=Path, default=HERE / 'results')
    p.add_argument('--worker', nargs=2, default=None,
                   help=argparse.SUPPRESS)
    p.add_argument('--smoke', action='store_true',
                   help='a tiny synthetic base graph, scales 1 and 2')
    args = p.parse_args(argv)
    if args.worker:
        out = worker(args.worker[0], args.worker[1], args.steps,
                     args.warmup)
        print('RESULT ' + json.dumps(out), flush=True)
        return out
    if args.smoke:
        gen = torch.Generator().manual_seed(0)
        user_deg = torch.randint(2, 12, (60,), generator=gen)
        item_deg = torch.randint(1, 20, (80,), generator=gen)
        args.scales, args.steps, args.warmup = [1, 2], 2, 1
    else:
        user_deg, item_deg = gowalla_degrees(args.raw_dir, args.root)
    tmp = Path(tempfile.mkdtemp())
    rows = []
    for scale in args.scales:
        t0 = time.perf_counter()
        pairs, num_u, num_i = grow(user_deg, item_deg, scale)
        path = tmp / f'graph{scale}.pt'
        torch.save(dict(pairs=pairs, num_users=num_u, num_items=num_i),
                   path)
        gen_s = time.perf_counter() - t0
        del pairs
        for name in args.models:
            row = run_one(name, path, args)
            row.update(scale=scale, generate_s=gen_s)
            rows.append(row)
            print(json.dumps(row), flush=True)
        path.unlink()
    if not args.smoke:
        rows = keep_other_rows(args.results / 'pinsage_scale.json', rows,
                               lambda r: (r['scale'], r['model']))
        rows.sort(key=lambda r: (r['scale'], r['model']))
    record = dict(benchmark='PinSage vs LightGCN, synthetic scale',
                  machine=machine(), steps=args.steps, warmup=args.warmup,
                  max_gb=args.max_gb, options=MODELS, rows=rows,
                  date=time.strftime('%Y-%m-%d'))
    md = markdown(record)
    write_results(args.results, 'pinsage_scale', record, md, args.smoke)
    return record


if __name__ == '__main__':
    main()
