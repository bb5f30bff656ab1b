"""NGCF on MovieLens-100K with the library's Python API.

    python examples/ngcf_movielens.py --epochs 100 --node-dropout 0.1
    python examples/ngcf_movielens.py --smoke     # seconds, for CI

Random 8/1/1 split per user, BPR with one uniform negative, full-ranking
evaluation with known items masked, model selected on validation recall@20
and the test part scored once at the best epoch.  Defaults follow the NGCF
reference code (embedding and layer sizes 64, three layers, message dropout
0.1, L2 weight 1e-5, batch 1024); the learning rate (5e-3 against the
reference's 1e-4 on Gowalla) is raised for the small data set
(``benchmarks/cf_movielens.py`` reports what it reaches).
"""
import argparse
import json

import torch

from pyg_recsys.data.loader import PairLoader
from pyg_recsys.datasets import MovieLens100K
from pyg_recsys.nn.models import NGCF
from pyg_recsys.sampling import UniformSampler
from pyg_recsys.train import RankingEvaluator, Trainer, seed_everything


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--root', default=None, help='writable data root')
    p.add_argument('--raw-dir', default=None, help='folder with u.data ...')
    p.add_argument('--epochs', type=int, default=100)
    p.add_argument('--lr', type=float, default=5e-3)
    p.add_argument('--batch-size', type=int, default=1024)
    p.add_argument('--dim', type=int, default=64)
    p.add_argument('--layers', type=int, default=3)
    p.add_argument('--reg', type=float, default=1e-5)
    p.add_argument('--message-dropout', type=float, default=0.1)
    p.add_argument('--node-dropout', type=float, default=0.0)
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
    model = NGCF(split.num_users, split.num_items, split.train,
                 embedding_dim=args.dim, num_layers=args.layers,
                 reg_weight=args.reg, hidden_channels=args.dim,
                 message_dropout=args.message_dropout,
                 node_dropout=args.node_dropout)
    sampler = UniformSampler(split.num_items, exclude=split.csr('train'))
    loader = PairLoader(split.train, sampler, batch_size=args.batch_size,
                        seed=args.seed)
    trainer = Trainer(model, loader, RankingEvaluator(split), lr=args.lr,
                      epochs=args.epochs, eval_every=5 if not args.smoke
                      else 1, monitor='recall@20', patience=5,
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
