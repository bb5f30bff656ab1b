"""LightGCN (or MF) on MovieLens-100K with the library's Python API.

    python examples/lightgcn_movielens.py --epochs 60
    python examples/lightgcn_movielens.py --model mf
    python examples/lightgcn_movielens.py --smoke     # seconds, for CI

Random 8/1/1 split per user, BPR with one uniform negative, full-ranking
evaluation with known items masked, model selected on validation recall@20
and the test part scored once at the best epoch.
"""
import argparse
import json

import torch

from pyg_recsys.data.loader import PairLoader
from pyg_recsys.datasets import MovieLens100K
from pyg_recsys.nn.models import MF, LightGCN
from pyg_recsys.sampling import UniformSampler
from pyg_recsys.train import RankingEvaluator, Trainer, seed_everything


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', choices=['lightgcn', 'mf'], default='lightgcn')
    p.add_argument('--root', default=None, help='writable data root')
    p.add_argument('--raw-dir', default=None, help='folder with u.data ...')
    p.add_argument('--epochs', type=int, default=60)
    p.add_argument('--lr', type=float, default=5e-3)
    p.add_argument('--dim', type=int, default=64)
    p.add_argument('--layers', type=int, default=3)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=None, help='checkpoint folder')
    p.add_argument('--smoke', action='store_true',
                   help='two epochs, no progress bar')
    args = p.parse_args()
    if args.smoke:
        args.epochs = 2

    seed_everything(args.seed)
    ds = MovieLens100K(root=args.root, raw_dir=args.raw_dir)
    split = ds.split(seed=args.seed)
    if args.model == 'lightgcn':
        model = LightGCN(split.num_users, split.num_items, split.train,
                         embedding_dim=args.dim, num_layers=args.layers)
    else:
        model = MF(split.num_users, split.num_items, embedding_dim=args.dim)
    sampler = UniformSampler(split.num_items, exclude=split.csr('train'))
    loader = PairLoader(split.train, sampler, batch_size=2048,
                        seed=args.seed)
    trainer = Trainer(model, loader, RankingEvaluator(split), lr=args.lr,
                      epochs=args.epochs, eval_every=5 if not args.smoke
                      else 1, monitor='recall@20', patience=4,
                      out_dir=args.out, progress=not args.smoke)
    result = trainer.fit()
    print(json.dumps(dict(best_epoch=result['best_epoch'],
                          test=result['test']), indent=1))

    user = 0
    _, items = model.recommend(torch.tensor([user]), k=5,
                               exclude=split.exclude('test'))
    titles = ds.item_titles
    orig_user = ds.interactions.user_ids[user]
    print(f'top 5 for user {orig_user}:')
    for i in items[0].tolist():
        print(f'  {titles[i] if titles else ds.interactions.item_ids[i]}')


if __name__ == '__main__':
    main()
