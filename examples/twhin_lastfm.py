"""TwHIN on Last.FM with the library's Python API: translation embeddings
over the interactions and every knowledge-graph relation, then BPR-MF
started from its user and item tables.

    python examples/twhin_lastfm.py --epochs 30
    python examples/twhin_lastfm.py --device cpu
    python examples/twhin_lastfm.py --smoke     # seconds, for CI

(``--device auto``, the default, takes a GPU when there is one.)
"""
import argparse
import json

import torch

from pyg_recsys.data.loader import PairLoader
from pyg_recsys.datasets import LastFMKG
from pyg_recsys.nn.models import MF, TwHIN
from pyg_recsys.ops.device import resolve_device
from pyg_recsys.sampling import UniformSampler
from pyg_recsys.train import RankingEvaluator, Trainer, adam, seed_everything


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--root', default=None, help='writable data root')
    p.add_argument('--raw-dir', default=None, help='KGCN\'s data/music')
    p.add_argument('--epochs', type=int, default=30)
    p.add_argument('--lr', type=float, default=5e-3)
    p.add_argument('--device', default='auto')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--smoke', action='store_true', help='one epoch')
    args = p.parse_args()
    if args.smoke:
        args.epochs = 1

    seed_everything(args.seed)
    device = resolve_device(args.device)
    split = LastFMKG(root=args.root, raw_dir=args.raw_dir).split(
        kind='random', seed=args.seed)
    evaluator = RankingEvaluator(split)
    twhin = TwHIN(split.graph(), 64).to(device)
    print('relations:', twhin.relations[:3], '...')
    fit = dict(epochs=args.epochs, eval_every=5 if not args.smoke else 1,
               monitor='recall@20', device=device, progress=not args.smoke)
    tw = Trainer(twhin, twhin.triple_loader(2048, args.seed), evaluator,
                 optimizer=adam(twhin.parameters(), lr=args.lr),
                 **fit).fit()
    mf = MF(split.num_users, split.num_items, embedding_dim=64)
    tables = twhin.node_embeddings()
    with torch.no_grad():
        mf.embedding['user'].copy_(tables['user'])
        mf.embedding['item'].copy_(tables['item'])
    mf.to(device)
    loader = PairLoader(split.train, UniformSampler(
        split.num_items, exclude=split.csr('train')), batch_size=2048,
        seed=args.seed)
    res = Trainer(mf, loader, evaluator,
                  optimizer=adam(mf.parameters(), lr=args.lr), **fit).fit()
    print(json.dumps({'twhin test': tw['test'],
                      'mf from twhin test': res['test']}, indent=1))


if __name__ == '__main__':
    main()
