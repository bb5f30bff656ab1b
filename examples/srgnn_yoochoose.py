"""SR-GNN (or TAGNN) on Yoochoose 1/64 with the library's Python API.

    python examples/srgnn_yoochoose.py --epochs 5
    python examples/srgnn_yoochoose.py --model tagnn
    python examples/srgnn_yoochoose.py --dataset tmall
    python examples/srgnn_yoochoose.py --smoke     # seconds, for CI

The SR-GNN pickles hold prefix examples (a session gives one example per
prefix, its next item the target).  Each example becomes a session graph
(``SessionGraphs``), batches come from ``SessionLoader`` (PyG ``Batch``
objects), the model is selected on a random 10% of the training examples
and the test pickle is scored once: full ranking over all items, nothing
masked, HitRate@20 being the papers' "P@20".  Recipe of the SR-GNN code:
d = 100, batch 100, Adam lr 1e-3, weight decay 1e-5, the rate divided by
10 every 3 epochs.
"""
import argparse
import json

import torch

from pyg_recsys.data.session import SessionGraphs, SessionLoader
from pyg_recsys.datasets import SRGNNSessions, next_item_task
from pyg_recsys.nn.models import SRGNN, TAGNN
from pyg_recsys.train import NextItemEvaluator, Trainer, seed_everything


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', choices=('srgnn', 'tagnn'), default='srgnn')
    p.add_argument('--dataset', choices=SRGNNSessions.names,
                   default='yoochoose1_64')
    p.add_argument('--root', default=None, help='writable data root')
    p.add_argument('--raw-dir', default=None,
                   help='folder with train.txt and test.txt')
    p.add_argument('--epochs', type=int, default=5)
    p.add_argument('--dim', type=int, default=100)
    p.add_argument('--steps', type=int, default=1)
    p.add_argument('--batch-size', type=int, default=100)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--weight-decay', type=float, default=1e-5)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=None, help='checkpoint folder')
    p.add_argument('--smoke', action='store_true',
                   help='one epoch on 1,000 training examples')
    args = p.parse_args()

    seed_everything(args.seed)
    ds = SRGNNSessions(args.dataset, root=args.root, raw_dir=args.raw_dir)
    task = next_item_task(ds, mode='prefix', seed=args.seed)
    train, val, test = task.train, task.val, task.test
    if args.smoke:
        args.epochs, n = 1, 1000
        train = SessionGraphs(ds.train[:n], targets=ds.train_y[:n],
                              num_items=ds.num_items)
        val = SessionGraphs(ds.test[:200], targets=ds.test_y[:200],
                            num_items=ds.num_items)
        test = val
    print(f'{args.dataset}: {ds.num_items} items, {len(train)} / '
          f'{len(val)} / {len(test)} train / val / test examples')

    cls = SRGNN if args.model == 'srgnn' else TAGNN
    model = cls(ds.num_items, embedding_dim=args.dim, num_steps=args.steps)
    loader = SessionLoader(train, args.batch_size, shuffle=True,
                           seed=args.seed)
    evaluator = NextItemEvaluator({'val': SessionLoader(val, 500),
                                   'test': SessionLoader(test, 500)},
                                  ds.num_items)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr,
                                 weight_decay=args.weight_decay)
    trainer = Trainer(model, loader, evaluator, optimizer=optimizer,
                      epochs=args.epochs, monitor='hit@20', lr_step=3,
                      out_dir=args.out, progress=not args.smoke)
    result = trainer.fit()
    keys = ('hit@10', 'mrr@10', 'hit@20', 'mrr@20')
    print(json.dumps(dict(best_epoch=result['best_epoch'],
                          test={k: result['test'][k] for k in keys}),
                     indent=1))

    # next-item recommendations for the first test sessions
    batch = test.collate(range(3))
    _, top = model.recommend(batch, 5)
    ids = ds.item_ids
    for b, n in enumerate(batch.length.tolist()):
        end = int(batch.length[:b + 1].sum())
        session = [int(ids[i]) for i in batch.seq[end - n:end]]
        print(f'session {session[-5:]} -> '
              f'{[int(ids[i]) for i in top[b]]} '
              f'(next: {int(ids[batch.y[b]])})')


if __name__ == '__main__':
    main()
