"""KGCN on Last.FM with the library's Python API: the paper's
click-through protocol (the reference's 1:1 labelled rows and 6:2:2
split), AUC / F1 and full-ranking recall@20 on the test part.

    python examples/kgcn_lastfm.py --epochs 10
    python examples/kgcn_lastfm.py --aggregator concat --device cpu
    python examples/kgcn_lastfm.py --smoke     # seconds, for CI

(``--device auto``, the default, takes a GPU when there is one.)
"""
import argparse
import json

import torch

from pyg_recsys.data.kg import item_entity_triples
from pyg_recsys.data.loader import ClickLoader
from pyg_recsys.datasets import LastFMKG
from pyg_recsys.nn.models import KGCN
from pyg_recsys.ops.device import resolve_device
from pyg_recsys.train import (
    ClickThroughEvaluator,
    RankingEvaluator,
    Trainer,
    adam,
    seed_everything,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--root', default=None, help='writable data root')
    p.add_argument('--raw-dir', default=None, help='KGCN\'s data/music')
    p.add_argument('--epochs', type=int, default=10)
    p.add_argument('--aggregator', default='sum',
                   choices=['sum', 'concat', 'neighbor'])
    p.add_argument('--device', default='auto')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--smoke', action='store_true', help='one epoch')
    args = p.parse_args()
    if args.smoke:
        args.epochs = 1

    seed_everything(args.seed)
    device = resolve_device(args.device)
    ds = LastFMKG(root=args.root, raw_dir=args.raw_dir)
    split = ds.split()  # KGCN's fixed split with its labelled rows
    triples, relations = item_entity_triples(split.side, split.num_items)
    model = KGCN(split.num_users, split.num_items,
                 split.num_nodes['entity'], triples, len(relations),
                 embedding_dim=16, num_layers=1, num_neighbors=8,
                 aggregator=args.aggregator, reg_weight=1e-4).to(device)
    loader = ClickLoader(split.labelled['train'], batch_size=128,
                         drop_last=True, seed=args.seed)
    evaluator = ClickThroughEvaluator(
        split.labelled, batch_size=128,
        ranking=RankingEvaluator(split, ks=(20,)))
    result = Trainer(model, loader, evaluator,
                     optimizer=adam(model.parameters(), lr=5e-4),
                     epochs=args.epochs, monitor='auc', device=device,
                     progress=not args.smoke).fit()
    print(json.dumps(dict(best_epoch=result['best_epoch'],
                          test=result['test']), indent=1))
    _, top = model.recommend(torch.tensor([0], device=device), 5,
                             exclude=split.known().to(device))
    print('top 5 artists for user', split.ids['user'][0], ':',
          [str(split.ids['item'][i]) for i in top[0].tolist()],
          f"(test recall@20 {result['test']['recall@20']:.4f})")


if __name__ == '__main__':
    main()
