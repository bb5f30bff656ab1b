"""PinSage on MovieLens-100K: importance neighbourhoods from random walks,
item-to-item max-margin training with curriculum hard negatives, both of
its evaluation protocols, and the movies nearest to a movie.

    python examples/pinsage_movielens.py
    python examples/pinsage_movielens.py --workers 1 --epochs 30
    python examples/pinsage_movielens.py --smoke     # seconds, for CI

Leave-one-out split by time (each user's last rating is test, the one
before validation).  Item inputs: an id embedding plus a projection of the
genres and the release year.  Each batch pairs a query movie with another
movie a user rated with it, against 500 shared random movies and, from
epoch 2, hard ones from the query's personalised-PageRank ranks
(``--hard-ranks``); ``--workers`` processes build the next batches'
neighbourhoods while the model trains.  Evaluation: HITS@10 of the movies
nearest to the user's latest training movie (DGL's protocol) and user
full ranking (recall@20; a user is the mean of their movies), known
movies masked; model selected on validation recall@20.  With ``--out``
the table of every movie's embedding (layer-by-layer inference over all
items) is written next to the checkpoints, with the movies' raw ids.
"""
import argparse
import json

import torch

from pyg_recsys.datasets import MovieLens100K, release_years
from pyg_recsys.nn.models import PinSage
from pyg_recsys.sampling import PPRHardSampler
from pyg_recsys.train import (
    ItemToItemEvaluator,
    RankingEvaluator,
    Trainer,
    seed_everything,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--root', default=None, help='writable data root')
    p.add_argument('--raw-dir', default=None, help='folder with u.data ...')
    p.add_argument('--epochs', type=int, default=20)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--dim', type=int, default=64)
    p.add_argument('--layers', type=int, default=2)
    p.add_argument('--neighbors', type=int, default=10)
    p.add_argument('--walks', type=int, default=50)
    p.add_argument('--batch-size', type=int, default=512)
    p.add_argument('--num-neg', type=int, default=500)
    p.add_argument('--hard-ranks', type=int, nargs=2, default=[10, 100])
    p.add_argument('--max-hard', type=int, default=4)
    p.add_argument('--workers', type=int, default=0)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=None, help='checkpoint folder')
    p.add_argument('--smoke', action='store_true',
                   help='two epochs, few walks, no progress bar')
    args = p.parse_args()
    if args.smoke:
        args.epochs, args.walks, args.batch_size = 2, 10, 4096

    seed_everything(args.seed)
    ds = MovieLens100K(root=args.root, raw_dir=args.raw_dir)
    split = ds.split(kind='leave_one_out')
    item_x = torch.cat([split.x['item'], release_years(ds.item_titles)], 1)
    model = PinSage(split.num_users, split.num_items, split.train,
                    item_x=item_x, embedding_dim=args.dim,
                    num_layers=args.layers, num_neighbors=args.neighbors,
                    num_walks=args.walks, seed=args.seed)
    hard = PPRHardSampler(split.csr('train'), tuple(args.hard_ranks),
                          num_walks=20 if args.smoke else 200,
                          seed=args.seed, of='items')
    loader = model.pair_loader(split.train, batch_size=args.batch_size,
                               num_neg=args.num_neg, hard=hard,
                               max_hard=args.max_hard,
                               num_workers=args.workers, seed=args.seed)
    users = RankingEvaluator(split, ks=(10, 20))
    items = ItemToItemEvaluator(split, ks=(10,))

    def evaluate(m, part):
        out = users(m, part)
        out.update({f'i2i_{k}': v for k, v in items(m, part).items()})
        return out

    trainer = Trainer(model, loader, evaluate, lr=args.lr,
                      epochs=args.epochs,
                      eval_every=1 if args.smoke else 2,
                      monitor='recall@20', patience=5, out_dir=args.out,
                      progress=not args.smoke)
    result = trainer.fit()
    secs = sorted(e['train_seconds'] for e in result['epochs'])
    test = result['test']
    print(json.dumps(dict(
        model=repr(model), best_epoch=result['best_epoch'],
        seconds_per_epoch=round(secs[len(secs) // 2], 3),
        query_order=items.query_order,
        test={k: round(test[k], 4) for k in (
            'i2i_hit@10', 'recall@20', 'ndcg@20', 'hit@10')}), indent=1))
    print(f'hit@10 (item to item) {test["i2i_hit@10"]:.4f}, '
          f'recall@20 (user) {test["recall@20"]:.4f}')

    if args.out:  # every item's embedding, for a retrieval index
        path = f'{args.out}/item_embeddings.pt'
        torch.save(dict(item_ids=torch.as_tensor(ds.interactions.item_ids),
                        embeddings=model.item_embeddings().cpu()), path)
        print(f'wrote {path}')
    titles = ds.item_titles
    movie = int(items.query_items()[0])
    scores = model.item_scores(torch.tensor([movie]))
    scores[0, movie] = float('-inf')
    near = scores.topk(5).indices[0].tolist()
    print(f'movies nearest to {titles[movie]!r}:')
    for i in near:
        print(f'  {titles[i]}')


if __name__ == '__main__':
    main()
