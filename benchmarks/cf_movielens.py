"""Every collaborative-filtering model on MovieLens-100K, same split, same
run: quality at early stopping and seconds per epoch.

Protocol: random 8/1/1 split per user (seed 0), full ranking over all
items with known items masked, model selected on validation recall@20
(checked every ``--eval-every`` epochs, stop after ``--patience``
validations without gain), test scored once at the selected epoch.  Every
model is trained by ``pyg-recsys train`` (the CLI's name table and
options), one after the other in this process, so the seconds per epoch
are comparable; the most-popular ranking is the floor.  There is no
published figure for this split; the table says so.

    python benchmarks/cf_movielens.py                 # all models
    python benchmarks/cf_movielens.py --models mf ngcf
    python benchmarks/cf_movielens.py --smoke         # synthetic, seconds

Writes ``benchmarks/results/cf_movielens.{json,md}``; the runs stay in
``--runs`` (resumable: a finished run is only re-read).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from _common import machine, write_results  # benchmarks/, beside this

from pyg_recsys.cli import main as cli_main
from pyg_recsys.data.split import Split
from pyg_recsys.nn.models import Popularity
from pyg_recsys.train import RankingEvaluator

HERE = Path(__file__).resolve().parent
# Rows: name -> (CLI model, options on top of SHARED); see the README.
RECIPES: dict[str, tuple[str, list[str]]] = {
    'mf': ('mf', ['--lr', '5e-3']),
    'lightgcn': ('lightgcn', ['--lr', '5e-3']),
    'lightgcn, 256 shared negatives': (
        'lightgcn', ['--lr', '5e-3', '--neg', 'shared', '--num-neg', '256']),
    'lightgcn, PPR curriculum': (
        'lightgcn', ['--lr', '5e-3', '--neg', 'curriculum']),
    # ML-100K has 1,682 items: PPR ranks 10-100 hold many held-out
    # positives, so a deeper window is shown too
    'lightgcn, PPR curriculum, ranks 100-400': (
        'lightgcn', ['--lr', '5e-3', '--neg', 'curriculum', '--hard-ranks',
                     '100', '400']),
    'ngcf': ('ngcf', ['--lr', '5e-3', '--reg', '1e-5']),
    'sage': ('sage', ['--lr', '1e-2', '--layers', '2', '--dropout', '0.1',
                      '--batch-size', '8192']),
    'sage, mini-batch': ('sage', ['--lr', '1e-2', '--layers', '2',
                                  '--dropout', '0.1', '--batch-size', '8192',
                                  '--minibatch', '--neighbors', '10', '5']),
    'gat': ('gat', ['--lr', '1e-2', '--layers', '2', '--dropout', '0.1',
                    '--batch-size', '8192', '--epochs', '60']),
    # lambda 0.02: the paper's 0.2-0.5 lets InfoNCE win over BPR on this
    # dense data set (examples/simgcl_movielens.py); both rows are shown
    'simgcl, lambda 0.02': ('simgcl', ['--lr', '5e-3', '--layers', '2',
                                       '--cl-weight', '0.02']),
    'simgcl, lambda 0.2': ('simgcl', ['--lr', '5e-3', '--layers', '2',
                                      '--cl-weight', '0.2']),
}
SHARED = ['--epochs', '300', '--eval-every', '5', '--patience', '4',
          '--monitor', 'recall@20']


def write_synthetic_ml100k(folder: Path, num_users: int = 40,
                           num_items: int = 50, per_user: int = 15,
                           seed: int = 0) -> None:
    """A tiny folder in GroupLens ml-100k format (``u.data``, ``u.item``,
    ``u.user``) for the smoke run."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for u in range(1, num_users + 1):
        items = torch.randperm(num_items, generator=gen)[:per_user] + 1
        for t, i in enumerate(items.tolist()):
            rows.append(f'{u}\t{i}\t{1 + (u + i) % 5}\t{880000000 + t}')
    (folder / 'u.data').write_text('\n'.join(rows) + '\n')
    flags = ['|'.join('1' if g == i % 19 else '0' for g in range(19))
             for i in range(num_items)]
    (folder / 'u.item').write_text(''.join(
        f'{i + 1}|Movie {i + 1} (1995)|01-Jan-1995||http://x|{flags[i]}\n'
        for i in range(num_items)), encoding='latin-1')
    jobs = ('student', 'engineer', 'artist')
    (folder / 'u.user').write_text(''.join(
        f'{u}|{20 + u % 40}|{"MF"[u % 2]}|{jobs[u % 3]}|00000\n'
        for u in range(1, num_users + 1)))


def markdown(record: dict) -> list[str]:
    """The markdown table of a ``cf_movielens.json`` record."""
    rows, pop_test = record['rows'], record['popularity']
    ref = next((r['seconds_per_epoch'] for r in rows
                if r['model'] == 'lightgcn'), None)  # the plain row
    mach = record['machine']
    md = ['# Collaborative filtering on MovieLens-100K', '',
          f'Protocol: {record["protocol"]}. Published figure: none for '
          'this split (random per-user splits differ between papers).', '',
          '| model | epochs (best) | recall@20 | ndcg@20 | s/epoch | '
          's/epoch vs LightGCN |', '|---|---:|---:|---:|---:|---:|']
    for r in rows:
        ratio = (f'{r["seconds_per_epoch"] / ref:.2f}x' if ref else '')
        md.append(f'| {r["model"]} | {r["epochs"]} ({r["best_epoch"]}) | '
                  f'{r["test"]["recall@20"]:.4f} | '
                  f'{r["test"]["ndcg@20"]:.4f} | '
                  f'{r["seconds_per_epoch"]:.2f} | {ratio} |')
    md.append(f'| most popular (floor) | - | {pop_test["recall@20"]:.4f} | '
              f'{pop_test["ndcg@20"]:.4f} | - | |')
    md += ['', f'{mach["cpus"]} cores, torch {mach["torch"]}'
           f', {mach["threads"]} threads. Options per model: '
           + '; '.join(f'{r["model"]}: `{" ".join(r["options"])}`'
                       for r in rows)]
    return md


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--models', nargs='+', default=list(RECIPES))
    p.add_argument('--runs', type=Path, default=Path('runs/cf_movielens'))
    p.add_argument('--results', type=Path, default=HERE / 'results')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--smoke', action='store_true',
                   help='synthetic ml-100k folder, 2 epochs per model')
    args = p.parse_args(argv)
    unknown = sorted(set(args.models) - set(RECIPES))
    if unknown:
        raise SystemExit(f'cf_movielens: no recipe for {unknown}; choose '
                         f'from {sorted(RECIPES)}')

    shared = list(SHARED)
    extra: list[str] = []
    if args.smoke:
        tmp = Path(tempfile.mkdtemp())
        raw = tmp / 'raw'
        raw.mkdir()
        write_synthetic_ml100k(raw)
        args.runs = tmp / 'runs'
        extra = ['--raw-dir', str(raw), '--root', str(tmp / 'root')]
        shared = ['--epochs', '2', '--eval-every', '1', '--monitor',
                  'recall@20']

    rows = []
    for name in args.models:
        model, options = RECIPES[name]
        out = args.runs / name.replace(', ', '_').replace(' ', '-')
        code = cli_main(['-q', 'train', '--model', model, '--dataset',
                         'movielens-100k', '--seed', str(args.seed),
                         '--out', str(out), '--resume', '--no-progress',
                         # smoke settings win over a row's own
                         *(options + shared if args.smoke
                           else shared + options), *extra])
        if code != 0:
            raise SystemExit(f'cf_movielens: {name} failed ({code})')
        rec = json.loads((out / 'metrics.json').read_text())
        secs = sorted(e['train_seconds'] for e in rec['epochs'])
        rows.append(dict(model=name, epochs=len(rec['epochs']),
                         best_epoch=rec['best_epoch'], test=rec['test'],
                         seconds_per_epoch=secs[len(secs) // 2],
                         options=options))

    # the floor: most popular items, on the split the runs used
    split = Split.from_dict(torch.load(out / 'split.pt',
                                       weights_only=True))
    pop = Popularity(split.num_users, split.num_items, split.train)
    pop_test = RankingEvaluator(split)(pop, 'test')

    protocol = ('MovieLens-100K, random 8/1/1 split per user (seed '
                f'{args.seed}); full ranking, train+val items masked for '
                'test; K=20; selected on validation recall@20, early '
                'stopping')
    out = dict(benchmark='CF models on MovieLens-100K', protocol=protocol,
               rows=rows, popularity=pop_test,
               published='none for this split',
               machine=machine(),
               smoke=args.smoke)
    md = markdown(out)
    write_results(args.results, 'cf_movielens', out, md, args.smoke)
    return out


if __name__ == '__main__':
    main()
