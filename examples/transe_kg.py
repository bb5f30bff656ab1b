"""TransE knowledge-graph completion (Kinship, UMLS, Nations, WN18RR,
FB15k-237) with the library's Python API.

    python examples/transe_kg.py --dataset umls --epochs 100
    python examples/transe_kg.py --dataset nations --device cpu
    python examples/transe_kg.py --smoke     # seconds, for CI

(``--device auto``, the default, takes a GPU when there is one.)

Reciprocal relations, L2 distance, softmax cross-entropy of the true head
and tail against uniform negatives shared by each batch; filtered ranking
of every test triple's head and tail among all entities (the other known
true triples masked), the model selected on validation MRR.
"""
import argparse
import json

import torch

from pyg_recsys.data.loader import TripleLoader
from pyg_recsys.datasets import KGCompletionDataset
from pyg_recsys.nn.models import TransE
from pyg_recsys.ops.device import resolve_device
from pyg_recsys.train import KGEvaluator, Trainer, adam, seed_everything


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--dataset', default='kinship',
                   choices=KGCompletionDataset.names)
    p.add_argument('--root', default=None, help='writable data root')
    p.add_argument('--raw-dir', default=None,
                   help='folder with train.txt, valid.txt, test.txt')
    p.add_argument('--epochs', type=int, default=100)
    p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--dim', type=int, default=128)
    p.add_argument('--num-neg', type=int, default=256)
    p.add_argument('--batch-size', type=int, default=512)
    p.add_argument('--device', default='auto')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--smoke', action='store_true',
                   help='two epochs, no progress bar')
    args = p.parse_args()
    if args.smoke:
        args.epochs, args.dim = 2, 16

    seed_everything(args.seed)
    device = resolve_device(args.device)
    ds = KGCompletionDataset(root=args.root, name=args.dataset,
                             raw_dir=args.raw_dir)
    split = ds.split()
    model = TransE(split.num_entities, split.num_relations, args.dim,
                   p_norm=2, reciprocal=True)
    loader = TripleLoader(split.train, split.num_entities,
                          batch_size=args.batch_size, num_neg=args.num_neg,
                          shared=True, seed=args.seed)
    model.to(device)
    trainer = Trainer(model, loader, KGEvaluator(split),
                      optimizer=adam(model.parameters(), lr=args.lr),
                      epochs=args.epochs, eval_every=1 if args.smoke
                      else 5, monitor='mrr', patience=10, device=device,
                      progress=not args.smoke)
    result = trainer.fit()
    print(json.dumps(dict(best_epoch=result['best_epoch'],
                          test=result['test']), indent=1))

    # the three most plausible tails of the first test triples
    h, r, t = split.test[:, :3].to(device)
    with torch.no_grad():
        top = model.score_tails(h, r).topk(3, dim=1).indices.cpu()
    ent, rel = split.entity_ids, split.relation_names
    for b in range(3):
        print(f'({ent[int(h[b])]}, {rel[int(r[b])]}, ?) -> '
              f'{[str(ent[i]) for i in top[b].tolist()]} '
              f'(true: {ent[int(t[b])]})')


if __name__ == '__main__':
    main()
