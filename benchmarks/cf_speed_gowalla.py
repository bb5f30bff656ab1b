"""Seconds per training step and per epoch of every CF model on Gowalla,
measured in one run, as ratios to LightGCN.

Each model is built by the CLI's name table on all of the LightGCN
Gowalla ``train.txt`` (29,858 users, 40,981 items, 810,128 pairs), with
the recipe of ``benchmarks/gowalla_quality.py`` (d = 64, batch 2048, one
uniform negative, Adam lr 1e-3).  A step is sampling + ``loss`` +
backward + optimizer step; each model takes ``--warmup`` untimed steps,
then ``--batches`` timed ones, best mean of ``--repeats``.  The epoch time
is that mean times the number of batches in an epoch.  Run it on a quiet
machine: the ratios are only as good as the machine's calm (the load
average before and after is recorded).

    python benchmarks/cf_speed_gowalla.py
    python benchmarks/cf_speed_gowalla.py --models lightgcn ngcf
    python benchmarks/cf_speed_gowalla.py --smoke

Writes ``benchmarks/results/cf_speed_gowalla.{json,md}``.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from _common import machine, write_results  # benchmarks/, beside this
from lightgcn_gowalla import batches_forever, write_synthetic

from pyg_recsys.cli import build_loader, build_model, parse_train_args
from pyg_recsys.datasets import LightGCNDataset

HERE = Path(__file__).resolve().parent
# CLI options of each model (as in the Gowalla quality runs).
MODELS: dict[str, list[str]] = {
    'mf': [],
    'lightgcn': ['--layers', '3'],
    'ngcf': ['--layers', '3', '--reg', '1e-5'],
    'simgcl': ['--layers', '2', '--cl-weight', '0.1'],
    'sage': ['--layers', '2'],
    'gat': ['--layers', '2'],
}


def time_model(name: str, split, ds, args) -> dict:
    margs = parse_train_args(
        ['--model', name, '--dataset', 'gowalla', '--out', '-',
         '--batch-size', str(args.batch_size), *MODELS[name]])
    best = None
    for rep in range(args.repeats):
        torch.manual_seed(rep)
        model = build_model(margs, split)
        loader = build_loader(margs, split, model)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()
        it = batches_forever(loader)
        for b in range(args.warmup + args.batches):
            if b == args.warmup:
                t0 = time.perf_counter()
            batch = next(it)
            opt.zero_grad()
            model.loss(batch).backward()
            opt.step()
        sec = (time.perf_counter() - t0) / args.batches
        best = sec if best is None else min(best, sec)
    nb = len(loader)
    return dict(sec_per_batch=best, batches_per_epoch=nb,
                projected_epoch_s=best * nb, options=MODELS[name])


def markdown(record: dict) -> list[str]:
    """The markdown table of a ``cf_speed_gowalla.json`` record."""
    rows, mach = record['rows'], record['machine']
    load = record['load_average']
    ref = rows.get('lightgcn', {}).get('sec_per_batch')
    md = ['# Training speed of the CF models on Gowalla (same run)', '',
          f'Protocol: {record["protocol"]}; {mach["cpus"]} cores, '
          f'{mach["threads"]} threads, torch {mach["torch"]}; '
          f'load average {load["before"]:.2f} before, '
          f'{load["after"]:.2f} after.',
          '', '| model | options | s / batch | s / epoch | vs LightGCN |',
          '|---|---|---:|---:|---:|']
    for name, r in rows.items():
        ratio = f'{r["sec_per_batch"] / ref:.2f}x' if ref else ''
        md.append(f'| {name} | {" ".join(r["options"]) or "-"} | '
                  f'{r["sec_per_batch"]:.4f} | '
                  f'{r["projected_epoch_s"]:.1f} | {ratio} |')
    md += ['', 'Published figure: none (a speed benchmark: ratios to '
           'LightGCN measured in the same run).']
    return md


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--models', nargs='+', default=list(MODELS),
                   choices=list(MODELS))
    p.add_argument('--batches', type=int, default=10)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--repeats', type=int, default=2)
    p.add_argument('--batch-size', type=int, default=2048)
    p.add_argument('--root', default=None, help='writable data root')
    p.add_argument('--raw-dir', default=None)
    p.add_argument('--results', type=Path, default=HERE / 'results')
    p.add_argument('--smoke', action='store_true',
                   help='synthetic LightGCN-format folder, 2 batches')
    args = p.parse_args(argv)
    if args.smoke:
        tmp = Path(tempfile.mkdtemp())
        raw = tmp / 'raw'
        raw.mkdir()
        write_synthetic(raw, num_users=60, num_items=80, per_user=12)
        args.raw_dir, args.root = str(raw), str(tmp / 'root')
        args.batches, args.warmup, args.repeats = 2, 1, 1
        args.batch_size = 128

    ds = LightGCNDataset(root=args.root, name='gowalla', raw_dir=args.raw_dir)
    split = ds.split(val_ratio=0.0)
    load_before = os.getloadavg()[0]
    rows = {}
    for name in args.models:
        rows[name] = time_model(name, split, ds, args)
        print(f'{name}: {rows[name]["sec_per_batch"]:.4f} s/batch',
              flush=True)
    load_after = os.getloadavg()[0]
    out = dict(benchmark='CF models, training speed on Gowalla',
               protocol=(f'all of train.txt, batch {args.batch_size}, one '
                         f'uniform negative, Adam; {args.batches} timed '
                         f'steps after {args.warmup}, best of '
                         f'{args.repeats}'),
               rows=rows, load_average=dict(before=load_before,
                                            after=load_after),
               machine=machine(),
               smoke=args.smoke)
    md = markdown(out)
    write_results(args.results, 'cf_speed_gowalla', out, md, args.smoke)
    return out


if __name__ == '__main__':
    main()
