"""GraphRec on Ciao with the library's Python API: rating prediction from
opinions (ratings) and the trust network, GraphRec's protocol (a random
split of all ratings, 80% training; validation and test halve the rest),
MAE / RMSE on the test part next to biased MF trained the same way.

    python examples/graphrec_ciao.py --epochs 8
    python examples/graphrec_ciao.py --dataset epinions --train-ratio 0.6
    python examples/graphrec_ciao.py --smoke     # seconds, for CI

(``--device auto``, the default, takes a GPU when there is one.)
"""
import argparse

import torch

from pyg_recsys.data.loader import ClickLoader
from pyg_recsys.datasets import SocialDataset
from pyg_recsys.nn.models import BiasedMF, GraphRec
from pyg_recsys.ops.device import resolve_device
from pyg_recsys.schema import USER_USER
from pyg_recsys.train import RatingEvaluator, Trainer, adam, seed_everything


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--dataset', default='ciao', choices=['ciao', 'epinions'])
    p.add_argument('--root', default=None, help='writable data root')
    p.add_argument('--raw-dir', default=None, help='folder of <name>.zip')
    p.add_argument('--train-ratio', type=float, default=0.8)
    p.add_argument('--epochs', type=int, default=8)
    p.add_argument('--device', default='auto')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--smoke', action='store_true',
                   help='one epoch over a tenth of the training ratings')
    args = p.parse_args()

    seed_everything(args.seed)
    device = resolve_device(args.device)
    ds = SocialDataset(root=args.root, name=args.dataset,
                       raw_dir=args.raw_dir)
    rest = (1 - args.train_ratio) / 2
    split = ds.split(ratios=(args.train_ratio, rest, rest), seed=args.seed)
    pairs, rating = split.train, split.attrs['train']['rating'].float()
    if args.smoke:
        args.epochs = 1
        keep = torch.randperm(rating.numel())[:rating.numel() // 10]
        pairs, rating = pairs[:, keep], rating[keep]
    evaluator = RatingEvaluator({
        part: (*split.part(part), split.attrs[part]['rating'].float())
        for part in ('val', 'test')})
    models = {
        'GraphRec': GraphRec(split.num_users, split.num_items, pairs, rating,
                             split.side[USER_USER], embedding_dim=64,
                             seed=args.seed),
        'biased MF': BiasedMF(split.num_users, split.num_items, 64,
                              mean_rating=float(rating.mean()),
                              reg_weight=0.5)}
    for name, model in models.items():
        model.to(device)
        loader = ClickLoader(pairs, 512, seed=args.seed, labels=rating)
        result = Trainer(model, loader, evaluator,
                         optimizer=adam(model.parameters(), lr=1e-3),
                         epochs=args.epochs, monitor='rmse', mode='min',
                         device=device, progress=not args.smoke).fit()
        test = result['test']
        print(f"{name}: test MAE {test['mae']:.4f}, RMSE {test['rmse']:.4f} "
              f"(epoch {result['best_epoch']} of {args.epochs}, selected on "
              f'validation RMSE)')
    u, i = split.test[0, :3], split.test[1, :3]
    pred = models['GraphRec'].eval().predict(u, i).cpu()
    for b in range(3):
        print(f"user {split.ids['user'][int(u[b])]}, item "
              f"{split.ids['item'][int(i[b])]}: GraphRec predicts "
              f"{float(pred[b]):.2f}, rated "
              f"{float(split.attrs['test']['rating'][b]):g}")


if __name__ == '__main__':
    main()
