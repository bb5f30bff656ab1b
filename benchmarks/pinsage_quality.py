"""PinSage next to LightGCN, ItemKNN and popularity under both of its
evaluation protocols, on MovieLens-100K and Gowalla, same split, same run.

Protocols (full ranking over all items, known items masked):

1. item to item (DGL's PinSage example): each user is represented by one
   query item, the latest training item (MovieLens: by time; Gowalla's
   LightGCN files carry no time, so there it is the user's last training
   pair in file order, labelled as such); items are ranked by their
   similarity to it (:class:`~pyg_recsys.train.ItemToItemEvaluator`),
   HITS@10.  LightGCN ranks by dot products of item embeddings, ItemKNN
   by cosine, popularity by counts.
2. user full ranking, recall@20 and ndcg@20
   (:class:`~pyg_recsys.train.RankingEvaluator`); PinSage scores a user
   by the mean of their training items' embeddings.

Splits: MovieLens-100K per-user leave-one-out by time (last item test,
second-to-last validation); Gowalla the LightGCN train / test files with
10% of each user's training pairs for validation.  Trained models
(PinSage, LightGCN) are built through the CLI's name table and selected
on validation recall@20 (evaluated every ``--eval-every`` epochs); both
protocols are reported at that checkpoint.  DGL's PinSage reports HITS@10
0.01241 on MovieLens-1M, which is not staged here; DGL itself does not
run here (its newest wheel targets torch 2.2), so it is not run beside.

    python benchmarks/pinsage_quality.py
    python benchmarks/pinsage_quality.py --datasets movielens-100k --epochs 30
    python benchmarks/pinsage_quality.py --datasets gowalla --epochs 6 \
        --eval-every 2 --model-epochs lightgcn=30
    python benchmarks/pinsage_quality.py --smoke

Writes ``benchmarks/results/pinsage_quality.{json,md}``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import keep_other_rows, machine, write_results  # noqa: E402
from lightgcn_gowalla import write_synthetic  # noqa: E402

from pyg_recsys.cli import (  # noqa: E402
    build_loader,
    build_model,
    load_dataset,
    parse_train_args,
)
from pyg_recsys.datasets import release_years  # noqa: E402
from pyg_recsys.nn.models import ItemKNN, Popularity  # noqa: E402
from pyg_recsys.train import (  # noqa: E402
    ItemToItemEvaluator,
    RankingEvaluator,
    Trainer,
    seed_everything,
)

SPLITS = {'movielens-100k': dict(kind='leave_one_out'),
          'gowalla': dict(kind='fixed')}
TRAINED = {'pinsage': ['--lr', '1e-3', '--neg', 'curriculum',
                       '--ppr-walks', '100'],
           'lightgcn': ['--lr', '5e-3', '--layers', '3']}


class BothProtocols:
    """Protocol 2's metrics and protocol 1's, prefixed ``i2i_``."""

    def __init__(self, split) -> None:
        self.users = RankingEvaluator(split, ks=(10, 20))
        self.items = ItemToItemEvaluator(split, ks=(10,))

    def __call__(self, model, part: str) -> dict[str, float]:
        out = self.users(model, part)
        out.update({f'i2i_{k}': v for k, v in self.items(model,
                                                         part).items()})
        return out


def run_dataset(name: str, args) -> list[dict]:
    argv = ['--dataset', name, '--out', '-']
    if args.raw_dir:
        argv += ['--raw-dir', args.raw_dir]
    if args.root:
        argv += ['--root', args.root]
    ds = load_dataset(name, args.root, args.raw_dir)
    split = ds.split(**SPLITS[name])
    if name == 'movielens-100k':  # PinSage's inputs: genres and year
        split.x['item'] = torch.cat([split.x['item'],
                                     release_years(ds.item_titles)], 1)
    evaluator = BothProtocols(split)
    rows = []

    def row(model_name, metrics, epochs='-', best='-', sec=None,
            options=()):
        r = dict(dataset=name, model=model_name, split=SPLITS[name]['kind'],
                 query_order=evaluator.items.query_order, epochs=epochs,
                 best_epoch=best, s_per_epoch=sec, options=list(options),
                 hit10_i2i=metrics['i2i_hit@10'],
                 recall20=metrics['recall@20'], ndcg20=metrics['ndcg@20'],
                 date=time.strftime('%Y-%m-%d'))
        rows.append(r)
        print(r, flush=True)

    row('popularity', evaluator(Popularity(split.num_users, split.num_items,
                                           split.train), 'test'))
    t0 = time.perf_counter()
    knn = ItemKNN(split.num_users, split.num_items, split.train, k=100)
    knn_s = time.perf_counter() - t0
    row('itemknn (k=100)', evaluator(knn, 'test'), options=['k=100'],
        sec=knn_s)
    for model_name in args.models:
        epochs = args.model_epochs.get(model_name, args.epochs)
        seed_everything(0)
        margs = parse_train_args(['--model', model_name, *argv,
                                  *TRAINED[model_name]])
        model = build_model(margs, split)
        loader = build_loader(margs, split, model)
        trainer = Trainer(model, loader, evaluator, lr=margs.lr,
                          epochs=epochs, eval_every=args.eval_every,
                          monitor='recall@20', progress=not args.smoke)
        result = trainer.fit()
        secs = sorted(e['train_seconds'] for e in result['epochs'])
        sec = secs[len(secs) // 2]  # median training time of an epoch
        row(model_name, result['test'], epochs=len(result['epochs']),
            best=result['best_epoch'], sec=sec,
            options=TRAINED[model_name])
    return rows


def markdown(record: dict) -> list[str]:
    """The markdown table of a ``pinsage_quality.json`` record."""
    mach = record['machine']
    md = ['# PinSage under both of its protocols, with baselines', '',
          'Protocol: full ranking over all items, known items masked. '
          'Item to item: HITS@10 of the items nearest to the user\'s query '
          'item (its latest training item: by time on MovieLens, by file '
          'order on Gowalla, whose files have no time). User: recall@20 / '
          'ndcg@20 (PinSage: mean of the user\'s item embeddings). '
          'MovieLens-100K: leave-one-out by time; Gowalla: the LightGCN '
          'train/test files, 10% of training for validation. Trained '
          'models selected on validation recall@20; both protocols at that '
          'checkpoint. Published: DGL\'s PinSage HITS@10 0.01241 on '
          'MovieLens-1M (not staged here; DGL does not run here: its '
          'newest wheel targets torch 2.2). '
          f'{mach["cpus"]} cores, torch {mach["torch"]}.', '',
          '| data set | split (query order) | model | epochs (best) | '
          'HITS@10 item-to-item | recall@20 | ndcg@20 | s / epoch | '
          'options |',
          '|---|---|---|---:|---:|---:|---:|---:|---|']
    for r in record['rows']:
        sec = '-' if r['s_per_epoch'] is None else f'{r["s_per_epoch"]:.1f}'
        md.append(f'| {r["dataset"]} | {r["split"]} ({r["query_order"]}) '
                  f'| {r["model"]} | {r["epochs"]} ({r["best_epoch"]}) | '
                  f'{r["hit10_i2i"]:.4f} | {r["recall20"]:.4f} | '
                  f'{r["ndcg20"]:.4f} | {sec} | '
                  f'{" ".join(r["options"]) or "-"} |')
    md.append('')
    md.append('ItemKNN\'s s / epoch column is the time to build its '
              'similarity table.')
    return md


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--datasets', nargs='+', default=list(SPLITS),
                   choices=list(SPLITS))
    p.add_argument('--models', nargs='+', default=list(TRAINED),
                   choices=list(TRAINED))
    p.add_argument('--epochs', type=int, default=20)
    p.add_argument('--eval-every', type=int, default=5)
    p.add_argument('--model-epochs', nargs='+', default=[],
                   metavar='MODEL=N', help='epochs of one model (e.g. '
                   'lightgcn=30), instead of --epochs')
    p.add_argument('--root', default=None, help='writable data root')
    p.add_argument('--raw-dir', default=None)
    p.add_argument('--results', type=Path, default=HERE / 'results')
    p.add_argument('--smoke', action='store_true',
                   help='a synthetic LightGCN-format Gowalla, 2 epochs')
    args = p.parse_args(argv)
    try:
        args.model_epochs = {k: int(v) for k, v in (
            a.split('=') for a in args.model_epochs)}
    except ValueError:
        p.error(f'--model-epochs takes MODEL=N, got {args.model_epochs}')
    if args.smoke:
        tmp = Path(tempfile.mkdtemp())
        raw = tmp / 'raw'
        raw.mkdir()
        write_synthetic(raw, num_users=60, num_items=80, per_user=12)
        args.raw_dir, args.root = str(raw), str(tmp / 'root')
        args.datasets, args.epochs, args.eval_every = ['gowalla'], 2, 1
    rows = []
    for name in args.datasets:
        rows += run_dataset(name, args)
    if not args.smoke:
        rows = keep_other_rows(args.results / 'pinsage_quality.json', rows,
                               lambda r: (r['dataset'], r['model']))
    record = dict(benchmark='PinSage quality, both protocols',
                  machine=machine(), rows=rows)
    md = markdown(record)
    write_results(args.results, 'pinsage_quality', record, md, args.smoke)
    return record


if __name__ == '__main__':
    main()
