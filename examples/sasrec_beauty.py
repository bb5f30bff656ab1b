"""SASRec (or GRU4Rec) on Amazon Beauty with the library's Python API.

    python examples/sasrec_beauty.py --epochs 50
    python examples/sasrec_beauty.py --model gru4rec
    python examples/sasrec_beauty.py --dataset amazon-games --loss bce \\
        --sampled-negatives 100           # the SASRec paper's protocol
    python examples/sasrec_beauty.py --smoke     # seconds, for CI

Per-user item sequences, leave-one-out (last item test, second-to-last
validation).  Training reads one example per user with a target after
every step (``SessionGraphs(mode='sequence')``): the causal encoder runs
once per sequence and is trained at every position.  The batches are the
same PyG ``Batch`` of session graphs SR-GNN reads; the two models read them
as padded sequences (``to_padded``).  Evaluation ranks all items (nothing
masked); ``--sampled-negatives 100`` adds SASRec's sampled protocol,
labelled ``sampled100_*``.  Defaults are RecBole's SASRec / GRU4Rec sizes.
"""
import argparse
import json

from pyg_recsys.data.session import SessionGraphs, SessionLoader
from pyg_recsys.datasets import SequenceDataset, next_item_task
from pyg_recsys.nn.models import GRU4Rec, SASRec
from pyg_recsys.train import NextItemEvaluator, Trainer, seed_everything


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', choices=('sasrec', 'gru4rec'),
                   default='sasrec')
    p.add_argument('--dataset', choices=SequenceDataset.names,
                   default='beauty')
    p.add_argument('--root', default=None, help='writable data root')
    p.add_argument('--raw-dir', default=None, help='folder with the file')
    p.add_argument('--epochs', type=int, default=50)
    p.add_argument('--max-len', type=int, default=50)
    p.add_argument('--dim', type=int, default=64)
    p.add_argument('--loss', choices=('ce', 'bce', 'bpr-max'), default='ce')
    p.add_argument('--dropout', type=float, default=None)
    p.add_argument('--batch-size', type=int, default=256)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--sampled-negatives', type=int, default=None)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=None, help='checkpoint folder')
    p.add_argument('--smoke', action='store_true',
                   help='one epoch on 2,000 users')
    args = p.parse_args()

    seed_everything(args.seed)
    ds = SequenceDataset(args.dataset, root=args.root, raw_dir=args.raw_dir)
    task = next_item_task(ds, mode='sequence', max_len=args.max_len)
    train, val, test = task.train, task.val, task.test
    if args.smoke:
        args.epochs = 1
        split = ds.leave_one_out()
        train = SessionGraphs(split.train[:2000], mode='sequence',
                              max_len=args.max_len, num_items=ds.num_items)
        val = SessionGraphs(split.val[:500], targets=split.val_y[:500],
                            max_len=args.max_len, num_items=ds.num_items)
        test = SessionGraphs(split.test[:500], targets=split.test_y[:500],
                             max_len=args.max_len, num_items=ds.num_items)
    print(f'{args.dataset}: {ds.num_users} users, {ds.num_items} items; '
          f'{len(train)} training sequences, {len(test)} test users')

    if args.model == 'sasrec':
        model = SASRec(ds.num_items, embedding_dim=args.dim,
                       max_len=args.max_len, loss=args.loss,
                       dropout=0.5 if args.dropout is None else args.dropout)
    else:
        model = GRU4Rec(ds.num_items, embedding_dim=args.dim, loss=args.loss,
                        dropout=0.3 if args.dropout is None else args.dropout)
    loader = SessionLoader(train, args.batch_size, shuffle=True,
                           seed=args.seed, bucket=20)
    evaluator = NextItemEvaluator(
        {'val': SessionLoader(val, 512), 'test': SessionLoader(test, 512)},
        ds.num_items, num_negatives=args.sampled_negatives, seed=args.seed)
    trainer = Trainer(model, loader, evaluator, lr=args.lr,
                      epochs=args.epochs, monitor='ndcg@10', patience=5,
                      eval_every=1 if args.smoke else 5, out_dir=args.out,
                      progress=not args.smoke)
    result = trainer.fit()
    keys = [k for k in result['test'] if k.split('@')[0].split('_')[-1]
            in ('hit', 'ndcg')]
    print(json.dumps(dict(best_epoch=result['best_epoch'],
                          test={k: result['test'][k] for k in keys}),
                     indent=1))

    # next items for the first test users
    batch = test.collate(range(3))
    _, top = model.recommend(batch, 5)
    ids = ds.item_ids
    for b, n in enumerate(batch.length.tolist()):
        end = int(batch.length[:b + 1].sum())
        history = [int(ids[i]) for i in batch.seq[end - n:end]]
        print(f'history ...{history[-5:]} -> '
              f'{[int(ids[i]) for i in top[b]]} '
              f'(next: {int(ids[batch.y[b]])})')


if __name__ == '__main__':
    main()
