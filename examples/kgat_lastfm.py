"""KGAT on Last.FM with the library's Python API: BPR over interactions
alternating with TransR over the collaborative knowledge graph, random
8/1/1 split per user, full ranking.

    python examples/kgat_lastfm.py --epochs 30
    python examples/kgat_lastfm.py --no-attention --device cpu
    python examples/kgat_lastfm.py --smoke     # seconds, for CI

(``--device auto``, the default, takes a GPU when there is one.)
"""
import argparse
import json

from pyg_recsys.data.loader import PairLoader
from pyg_recsys.datasets import LastFMKG
from pyg_recsys.nn.models import KGAT
from pyg_recsys.ops.device import resolve_device
from pyg_recsys.sampling import UniformSampler
from pyg_recsys.train import RankingEvaluator, Trainer, adam, seed_everything


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--root', default=None, help='writable data root')
    p.add_argument('--raw-dir', default=None, help='KGCN\'s data/music')
    p.add_argument('--epochs', type=int, default=30)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--no-attention', dest='attention',
                   action='store_false')
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
    model = KGAT(split.num_users, split.num_items, split.graph(),
                 attention=args.attention).to(device)
    loaders = {'cf': PairLoader(split.train, UniformSampler(
        split.num_items, exclude=split.csr('train')), batch_size=1024,
        seed=args.seed), 'kg': model.triple_loader(2048, args.seed)}
    result = Trainer(model, loaders, RankingEvaluator(split),
                     optimizer=adam(model.parameters(), lr=args.lr),
                     epochs=args.epochs, eval_every=5 if not args.smoke
                     else 1, monitor='recall@20', device=device,
                     progress=not args.smoke).fit()
    print(json.dumps(dict(best_epoch=result['best_epoch'],
                          losses=result['epochs'][-1].get('losses'),
                          test=result['test']), indent=1))


if __name__ == '__main__':
    main()
