"""One training driver per task kind: what differs between pairwise
ranking and next-item prediction when the command trains a model (data,
loader, evaluator, records, report); the rest of a run is shared
(:mod:`pyg_recsys.cli.run`)."""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import torch

from pyg_recsys.cli.table import (
    CLICK,
    KG,
    NEXT_ITEM,
    RANKING,
    RATING,
    ModelSpec,
)
from pyg_recsys.io import atomic_save
from pyg_recsys.schema import ITEM, ITEM_USER, USER, USER_ITEM, USER_USER

log = logging.getLogger('pyg_recsys')


class UserError(ValueError):
    """A problem with the user's options or data (one line, no
    traceback)."""


def metric_order(key: str) -> tuple[int, str]:
    name, _, k = key.partition('@')
    return (int(k) if k.isdigit() else 0, name)


def best_line(args: argparse.Namespace, result: dict[str, Any]) -> str:
    """``<model> on <data>: best epoch E of N (validation <monitor> v)``,
    the first line every driver's report prints."""
    return (f'{args.model} on {args.dataset}: best epoch '
            f'{result["best_epoch"]} of {len(result["epochs"])} '
            f'(validation {args.monitor} '
            f'{result["best_val"][args.monitor]:.4f})')


def split_kind(args: argparse.Namespace) -> str | None:
    """The split kind asked for: ``'file'`` with ``--split-file``
    (``--split`` then may only say ``file``), else ``--split``."""
    if getattr(args, 'split_file', None):
        if args.split_kind not in (None, 'file'):
            raise UserError(f'--split-file gives the split; drop --split '
                            f'{args.split_kind}')
        return 'file'
    return args.split_kind


class RankingDriver:
    """Pairwise user-item ranking (MF, LightGCN, NGCF, SimGCL, GraphSAGE,
    GAT, and PinSage trained item to item): a
    :class:`~pyg_recsys.data.split.Split` of a
    :class:`~pyg_recsys.datasets.RecDataset`, (user, positive, negatives)
    batches (PinSage: its own item-pair batches), full-ranking evaluation
    with known items masked."""

    kind = RANKING
    default_batch_size = 2048
    default_monitor = 'recall@20'
    #: options of every model of this kind
    options = frozenset({'neg', 'num_neg', 'pair_loss', 'temperature',
                         'hard_ranks', 'ppr_walks', 'max_hard', 'split_kind',
                         'split_ratios', 'split_file'})
    #: split kinds that take ``--split-ratios``
    ratio_splits = ('random', 'temporal')

    def load(self, ds: Any, args: argparse.Namespace) -> dict[str, Any]:
        kind = split_kind(args) or ds.default_split
        kwargs: dict[str, Any] = dict(seed=args.seed, kind=kind)
        if kind == 'file':
            if not args.split_file:
                raise UserError('--split file needs --split-file PATH')
            kwargs = dict(kind=kind, path=args.split_file)
        if args.split_ratios is not None:
            if kind not in self.ratio_splits:
                raise UserError(
                    f'--split-ratios applies to --split '
                    f'{" or ".join(self.ratio_splits)}, not to the '
                    f'{kind!r} split of {args.dataset} (its own parts)')
            kwargs['ratios'] = tuple(args.split_ratios)
        t0 = time.perf_counter()
        split = ds.split(**kwargs)
        audit = split.audit()  # leak-free by construction; checked anyway
        log.info('dataset %s: %d users, %d items, %d/%d/%d train/val/test '
                 '(%.1f s)', args.dataset, split.num_users, split.num_items,
                 split.train.size(1), split.val.size(1), split.test.size(1),
                 time.perf_counter() - t0)
        if split.val.size(1) == 0:
            raise UserError(f'the {args.dataset} split has no validation '
                            f'part to select the model on')
        return dict(ds=ds, split=split, audit=audit,
                    num_items=split.num_items)

    def prepare(self, data: dict[str, Any], args: argparse.Namespace,
                model: torch.nn.Module) -> None:
        """Nothing to do after the model is built."""

    def model_inputs(self, data: dict[str, Any], spec: ModelSpec,
                     args: argparse.Namespace) -> dict[str, Any]:
        split = data['split']
        out: dict[str, Any] = dict(num_users=split.num_users,
                                   num_items=split.num_items)
        if spec.kg:
            out['graph'] = split.graph()
        if spec.graph:
            # --side-relations: the whole training graph (knowledge graph,
            # trust ...) instead of the interactions alone
            out['edge_index'] = (split.graph() if getattr(args, 'side',
                                                          False)
                                 else split.train)
        if spec.features and args.features:
            import inspect
            takes = inspect.signature(spec.model_class()).parameters
            out.update({f'{t}_x': x for t, x in split.x.items()
                        if t in (USER, ITEM) and f'{t}_x' in takes})
        return out

    def sampler(self, data: dict[str, Any], args: argparse.Namespace
                ) -> Any:
        """The negative sampler ``--neg`` over the training items (known
        positives are never negatives)."""
        from pyg_recsys import sampling as S
        split = data['split']
        train = split.csr('train')
        uniform = S.UniformSampler(split.num_items, exclude=train)
        if args.neg == 'uniform':
            return uniform
        if args.neg == 'popularity':
            count = torch.bincount(split.train[1],
                                   minlength=split.num_items)
            return S.PopularitySampler(count, exclude=train)
        if args.neg == 'shared':
            return S.SharedSampler(uniform)
        if args.neg == 'inbatch':
            return S.InBatchSampler(train)
        hard = S.PPRHardSampler(train, rank_range=tuple(args.hard_ranks),
                                num_walks=args.ppr_walks, seed=args.seed)
        if args.neg == 'ppr':
            return hard
        return S.CurriculumSampler(uniform, hard, max_hard=args.max_hard)

    def item_hard_sampler(self, data: dict[str, Any],
                          args: argparse.Namespace) -> Any:
        """Item-query PPR hard negatives for ``--neg curriculum`` (none
        otherwise)."""
        if args.neg != 'curriculum':
            return None
        from pyg_recsys.sampling import PPRHardSampler
        return PPRHardSampler(data['split'].csr('train'),
                              rank_range=tuple(args.hard_ranks),
                              num_walks=args.ppr_walks, seed=args.seed,
                              of='items')

    def loader(self, data: dict[str, Any], args: argparse.Namespace,
               model: torch.nn.Module) -> Any:
        from pyg_recsys.data.loader import LinkNeighborPairLoader, PairLoader
        split = data['split']
        if args.minibatch:
            neighbors = args.neighbors or [10] * args.layers
            # the bipartite encoders read interactions only: sample those
            graph = split.graph().edge_type_subgraph([USER_ITEM, ITEM_USER])
            return LinkNeighborPairLoader(
                graph, split.train, neighbors,
                batch_size=args.batch_size, num_neg=args.num_neg,
                seed=args.seed)
        if hasattr(model, 'pair_loader'):  # item-to-item pairs (PinSage)
            return model.pair_loader(
                split.train, args.batch_size, args.num_neg,
                self.item_hard_sampler(data, args), args.max_hard,
                args.workers, args.seed)
        from pyg_recsys.nn.models.contract import MultiObjective
        if hasattr(model, 'triple_loader') and \
                not isinstance(model, MultiObjective):
            # every relation of the graph at once (TwHIN)
            return model.triple_loader(args.batch_size, args.seed)
        pairs = PairLoader(split.train, self.sampler(data, args),
                           batch_size=args.batch_size, num_neg=args.num_neg,
                           seed=args.seed)
        if hasattr(model, 'triple_loader'):  # alternating objectives (KGAT)
            return {'cf': pairs, 'kg': model.triple_loader(
                getattr(args, 'kg_batch_size', None) or 2048, args.seed)}
        return pairs

    def evaluator(self, data: dict[str, Any], args: argparse.Namespace
                  ) -> Any:
        from pyg_recsys.train import RankingEvaluator
        return RankingEvaluator(data['split'], ks=args.ks,
                                batch_size=args.eval_batch_size)

    def record(self, data: dict[str, Any], args: argparse.Namespace
               ) -> dict[str, Any]:
        return dict(
            split=data['split'].meta(), audit=data['audit'],
            protocol=dict(ranking='full',
                          masked='train items for val; train+val for test',
                          ks=args.ks, monitor=args.monitor))

    def save(self, data: dict[str, Any], out: Path) -> None:
        atomic_save(data['split'].to_dict(), out / 'split.pt')

    def report(self, data: dict[str, Any], args: argparse.Namespace,
               result: dict[str, Any], model: torch.nn.Module) -> None:
        print(best_line(args, result))
        print('test (full ranking, train+val items masked):')
        for key in sorted(result['test'], key=metric_order):
            print(f'  {key:<14} {result["test"][key]:.4f}')


class NextItemDriver:
    """Next-item prediction over sessions or per-user sequences (SR-GNN,
    TAGNN, GRU4Rec, SASRec): session-graph batches, full ranking of the
    next item, nothing masked."""

    kind = NEXT_ITEM
    default_batch_size = 256
    default_monitor = 'hit@20'
    options = frozenset({'max_len', 'train_mode', 'bucket',
                         'sampled_negatives'})

    def load(self, ds: Any, args: argparse.Namespace) -> dict[str, Any]:
        return dict(ds=ds, num_items=ds.num_items)

    def prepare(self, data: dict[str, Any], args: argparse.Namespace,
                model: torch.nn.Module) -> None:
        """The training / validation / test examples: one example per
        sequence (a target after every step) for causal models on
        per-user sequences unless ``--train-mode prefix``, else one per
        prefix; a model with a fixed number of positions (SASRec) bounds
        the length."""
        from pyg_recsys.datasets import SRGNNSessions, next_item_task
        ds = data['ds']
        mode = args.train_mode
        causal = getattr(model, 'causal', False)
        if mode == 'auto':
            mode = ('sequence' if causal
                    and not isinstance(ds, SRGNNSessions) else 'prefix')
        if mode == 'sequence' and not causal:
            raise UserError(f'{args.model} is not causal; it trains with '
                            f'--train-mode prefix')
        max_len = args.max_len or getattr(model, 'max_len', None)
        t0 = time.perf_counter()
        task = next_item_task(ds, mode=mode, max_len=max_len,
                              seed=args.seed)
        log.info('dataset %s: %d items, %d/%d/%d train/val/test examples '
                 '(%s, %.1f s)', args.dataset, task.num_items,
                 len(task.train), len(task.val), len(task.test),
                 task.info['mode'], time.perf_counter() - t0)
        data['task'] = task

    def model_inputs(self, data: dict[str, Any], spec: ModelSpec,
                     args: argparse.Namespace) -> dict[str, Any]:
        return dict(num_items=data['ds'].num_items)

    def loader(self, data: dict[str, Any], args: argparse.Namespace,
               model: torch.nn.Module) -> Any:
        from pyg_recsys.data.session import SessionLoader
        return SessionLoader(data['task'].train, args.batch_size,
                             shuffle=True, seed=args.seed,
                             bucket=args.bucket or None)

    def evaluator(self, data: dict[str, Any], args: argparse.Namespace
                  ) -> Any:
        from pyg_recsys.data.session import SessionLoader
        from pyg_recsys.train import NextItemEvaluator
        task = data['task']
        size = args.eval_batch_size or 512
        return NextItemEvaluator(
            {'val': SessionLoader(task.val, size),
             'test': SessionLoader(task.test, size)},
            task.num_items, ks=args.ks,
            num_negatives=args.sampled_negatives, seed=args.seed)

    def record(self, data: dict[str, Any], args: argparse.Namespace
               ) -> dict[str, Any]:
        sampled = args.sampled_negatives
        return dict(task=data['task'].info, protocol=dict(
            ranking='full over all items, nothing masked', ks=args.ks,
            monitor=args.monitor,
            sampled=(f'sampled{sampled}_* metrics: the target among '
                     f'{sampled} uniform items absent from the input '
                     f'sequence (SASRec protocol; for comparison with '
                     f'papers only)' if sampled else None)))

    def save(self, data: dict[str, Any], out: Path) -> None:
        """The examples are rebuilt from the data set; nothing to save."""

    def report(self, data: dict[str, Any], args: argparse.Namespace,
               result: dict[str, Any], model: torch.nn.Module) -> None:
        task, ds = data['task'], data['ds']
        sampled = args.sampled_negatives
        print(f'{best_line(args, result)}; {len(task.test)} test '
              f'examples')
        print('test (full ranking over all items, nothing masked):')
        for key in sorted(result['test'], key=metric_order):
            if key.split('@')[0] in ('hit', 'mrr', 'ndcg'):
                print(f'  {key:<14} {result["test"][key]:.4f}')
        if sampled:
            print(f'test, {sampled} sampled negatives (SASRec protocol):')
            for key in sorted(result['test'], key=metric_order):
                if key.startswith(f'sampled{sampled}_'):
                    print(f'  {key:<24} {result["test"][key]:.4f}')
        model.eval()
        batch = task.test.collate(range(min(3, len(task.test))))
        _, top = model.recommend(batch, 5)
        ids = ds.item_ids
        print('sample next-item recommendations (original item ids):')
        bounds = torch.cumsum(batch.length, 0).tolist()
        for b in range(top.size(0)):
            steps = batch.seq[(bounds[b - 1] if b else 0):bounds[b]]
            tail = ' '.join(str(ids[i]) for i in steps[-5:].tolist())
            recs = ' '.join(str(ids[i]) for i in top[b].tolist())
            print(f'  ... {tail} -> {recs}  (next: '
                  f'{ids[int(batch.y[b])]})')


class ClickDriver(RankingDriver):
    """Recommendation with a knowledge graph, KGCN's click-through
    protocol: where the split has labelled rows (Last.FM's fixed 6:2:2
    split with its 1:1 negatives), training on them (binary
    cross-entropy) and AUC / F1 over them, next to full-ranking top-K on
    the same split; on other splits (``--split random``), training on the
    positives with ``--num-neg`` uniform negatives labelled 0 (as RecBole
    trains KGCN) and full ranking only."""

    kind = CLICK
    default_batch_size = 128
    defaults = dict(dim=16, layers=1, reg=1e-4, lr=5e-4)
    options = frozenset({'num_neg', 'split_kind', 'split_ratios',
                         'split_file'})
    #: metrics of the labelled rows (besides the ranking ones)
    click_metrics = ('auc', 'f1', 'auc_batches', 'f1_batches')

    @staticmethod
    def labelled(args: argparse.Namespace) -> bool:
        """Whether the run's split has labelled rows (a split the data set
        lists in ``labelled_splits``)."""
        from pyg_recsys.cli.table import DATASETS
        cls = DATASETS[args.dataset].dataset_class()
        kind = split_kind(args) or getattr(cls, 'default_split', None)
        return kind in getattr(cls, 'labelled_splits', ())

    def monitor_for(self, args: argparse.Namespace) -> str:
        return 'auc' if self.labelled(args) else 'recall@20'

    def model_inputs(self, data: dict[str, Any], spec: ModelSpec,
                     args: argparse.Namespace) -> dict[str, Any]:
        from pyg_recsys.data.kg import item_entity_triples
        split = data['split']
        try:
            triples, relations = item_entity_triples(split.side,
                                                     split.num_items)
        except ValueError as e:
            raise UserError(f'{args.model} needs a knowledge graph: {e}') \
                from None
        return dict(num_users=split.num_users, num_items=split.num_items,
                    num_entities=split.num_nodes.get('entity', 0),
                    triples=triples, num_relations=len(relations))

    def loader(self, data: dict[str, Any], args: argparse.Namespace,
               model: torch.nn.Module) -> Any:
        from pyg_recsys.data.loader import ClickLoader, PairLoader
        split = data['split']
        if split.labelled:
            # (the reference drops the last partial batch)
            return ClickLoader(split.labelled['train'], args.batch_size,
                               drop_last=True, seed=args.seed)
        return PairLoader(split.train, self.sampler(data, args),
                          batch_size=args.batch_size, num_neg=args.num_neg,
                          seed=args.seed)

    def evaluator(self, data: dict[str, Any], args: argparse.Namespace
                  ) -> Any:
        from pyg_recsys.train import ClickThroughEvaluator, RankingEvaluator
        split = data['split']
        return ClickThroughEvaluator(
            split.labelled, batch_size=args.batch_size,
            ranking=RankingEvaluator(split, ks=args.ks,
                                     batch_size=args.eval_batch_size))

    def record(self, data: dict[str, Any], args: argparse.Namespace
               ) -> dict[str, Any]:
        out = super().record(data, args)
        if data['split'].labelled:
            out['protocol']['click_through'] = (
                'auc, f1 (threshold 0.5): over all labelled rows of the '
                'part; auc_batches, f1_batches: the mean over mini-batches '
                'of --batch-size rows in the reference order, the last '
                'partial batch dropped (as the KGCN code reports them)')
            out['protocol']['training'] = ('labelled train rows, binary '
                                           'cross-entropy')
        else:
            out['protocol']['training'] = (
                f'positives labelled 1, {args.num_neg} uniform negatives '
                f'labelled 0, binary cross-entropy')
        return out

    def report(self, data: dict[str, Any], args: argparse.Namespace,
               result: dict[str, Any], model: torch.nn.Module) -> None:
        test = result['test']
        if 'auc' in test:
            print(best_line(args, result))
            print('test, labelled rows (click-through):')
            for key in self.click_metrics:
                if key in test:
                    print(f'  {key:<14} {test[key]:.4f}')
            rest = dict(result, test={k: v for k, v in test.items()
                                      if k not in self.click_metrics})
            print('test (full ranking, train+val items masked):')
            for key in sorted(rest['test'], key=metric_order):
                print(f'  {key:<14} {rest["test"][key]:.4f}')
            return
        super().report(data, args, result, model)


class KGDriver:
    """Knowledge-graph completion (TransE): a
    :class:`~pyg_recsys.data.kg.KGSplit`, batches of training triples with
    corrupted heads and tails, filtered link-prediction ranking of both
    directions."""

    kind = KG
    default_batch_size = 1024
    default_monitor = 'mrr'
    #: defaults of this kind that differ from the others'
    defaults = dict(ks=[1, 3, 10], neg='shared', num_neg=256, dim=128,
                    reg=0.0, kg_loss='ce', margin=1.0, p_norm=2)
    options = frozenset({'neg', 'num_neg'})
    #: --neg values of this kind
    negatives = ('shared', 'uniform', 'inbatch')

    def load(self, ds: Any, args: argparse.Namespace) -> dict[str, Any]:
        split = ds.split()
        info = split.info
        log.info('dataset %s: %d entities, %d relations, %d/%d/%d '
                 'train/val/test triples (%d test triples with an entity '
                 'unseen in training)', args.dataset, split.num_entities,
                 split.num_relations, split.train.size(1),
                 split.val.size(1), split.test.size(1),
                 info.get('test_unseen_entity_triples', 0))
        return dict(ds=ds, split=split, num_items=split.num_entities)

    def prepare(self, data: dict[str, Any], args: argparse.Namespace,
                model: torch.nn.Module) -> None:
        """Nothing to do after the model is built."""

    def model_inputs(self, data: dict[str, Any], spec: ModelSpec,
                     args: argparse.Namespace) -> dict[str, Any]:
        split = data['split']
        return dict(num_entities=split.num_entities,
                    num_relations=split.num_relations)

    def loader(self, data: dict[str, Any], args: argparse.Namespace,
               model: torch.nn.Module) -> Any:
        from pyg_recsys.data.loader import TripleLoader
        split = data['split']
        num_neg = 0 if args.neg == 'inbatch' else args.num_neg
        return TripleLoader(split.train, split.num_entities,
                            batch_size=args.batch_size, num_neg=num_neg,
                            shared=args.neg == 'shared', seed=args.seed)

    def evaluator(self, data: dict[str, Any], args: argparse.Namespace
                  ) -> Any:
        from pyg_recsys.train import KGEvaluator
        return KGEvaluator(data['split'], ks=args.ks,
                           batch_size=args.eval_batch_size)

    def record(self, data: dict[str, Any], args: argparse.Namespace
               ) -> dict[str, Any]:
        return dict(split=data['split'].meta(), protocol=dict(
            ranking='filtered: every entity as head and as tail, the other '
                    'known true triples (train, val, test) masked; ties at '
                    'their rounded mean rank; means over both directions',
            ks=args.ks, monitor=args.monitor,
            negatives=('in-batch' if args.neg == 'inbatch' else
                       f'{args.num_neg} uniform heads and tails per '
                       + ('batch, shared' if args.neg == 'shared'
                          else 'triple'))))

    def save(self, data: dict[str, Any], out: Path) -> None:
        atomic_save(data['split'].to_dict(), out / 'split.pt')

    def report(self, data: dict[str, Any], args: argparse.Namespace,
               result: dict[str, Any], model: torch.nn.Module) -> None:
        split = data['split']
        print(f'{best_line(args, result)}; {split.test.size(1)} test '
              f'triples')
        print('test (filtered ranking, heads and tails):')
        for key in sorted(result['test'], key=metric_order):
            print(f'  {key:<14} {result["test"][key]:.4f}')
        model.eval()
        device = next(model.parameters()).device
        h, r, t = split.test[:, :3].to(device)
        with torch.no_grad():
            top = model.score_tails(h, r).topk(3, dim=1).indices.cpu()
        ent, rel = split.entity_ids, split.relation_names
        print('sample tail predictions (original ids):')
        for b in range(top.size(0)):
            guesses = ', '.join(str(ent[i]) for i in top[b].tolist())
            print(f'  ({ent[int(h[b])]}, {rel[int(r[b])]}, ?) -> '
                  f'{guesses}  (true: {ent[int(t[b])]})')


class RatingDriver(RankingDriver):
    """Rating prediction (GraphRec, biased MF): a random split of all
    ratings (:class:`~pyg_recsys.datasets.SocialDataset`: GraphRec's
    protocol, ``--split-ratios`` for its 60% setting), batches of rated
    (user, item) pairs, MAE / RMSE of the predictions
    (:class:`~pyg_recsys.train.RatingEvaluator`), the model selected on
    the lowest validation RMSE."""

    kind = RATING
    default_batch_size = 256
    default_monitor = 'rmse'
    defaults = dict(dim=64)
    options = frozenset({'split_kind', 'split_ratios', 'split_file'})
    ratio_splits = ('random',)
    #: monitors where lower is better
    lower_is_better = ('rmse', 'mae')

    def load(self, ds: Any, args: argparse.Namespace) -> dict[str, Any]:
        data = super().load(ds, args)
        split = data['split']
        for part in ('train', 'val', 'test'):
            if 'rating' not in split.attrs.get(part, {}):
                raise UserError(f'{args.dataset} has no ratings to predict '
                                f'(its {part} part has none); rating models '
                                f'need a data set with explicit ratings')
        return data

    def model_inputs(self, data: dict[str, Any], spec: ModelSpec,
                     args: argparse.Namespace) -> dict[str, Any]:
        split = data['split']
        rating = split.attrs['train']['rating'].to(torch.float)
        out: dict[str, Any] = dict(num_users=split.num_users,
                                   num_items=split.num_items)
        if spec.graph:
            out.update(edge_index=split.train, rating=rating,
                       trust=split.side.get(USER_USER))
        else:
            out['mean_rating'] = float(rating.mean())
        return out

    def loader(self, data: dict[str, Any], args: argparse.Namespace,
               model: torch.nn.Module) -> Any:
        from pyg_recsys.data.loader import ClickLoader
        split = data['split']
        return ClickLoader(split.train, args.batch_size, seed=args.seed,
                           labels=split.attrs['train']['rating'])

    def evaluator(self, data: dict[str, Any], args: argparse.Namespace
                  ) -> Any:
        from pyg_recsys.train import RatingEvaluator
        split = data['split']
        return RatingEvaluator(
            {part: (*split.part(part),
                    split.attrs[part]['rating'].to(torch.float))
             for part in ('val', 'test')},
            batch_size=args.eval_batch_size or 65536)

    def record(self, data: dict[str, Any], args: argparse.Namespace
               ) -> dict[str, Any]:
        return dict(split=data['split'].meta(), audit=data['audit'],
                    protocol=dict(metrics='MAE, RMSE of every held-out '
                                          'rating', monitor=args.monitor,
                                  selected='lowest validation '
                                           + args.monitor))

    def report(self, data: dict[str, Any], args: argparse.Namespace,
               result: dict[str, Any], model: torch.nn.Module) -> None:
        split = data['split']
        print(f'{best_line(args, result)}; {split.test.size(1)} test '
              f'ratings')
        print('test:')
        for key in ('mae', 'rmse'):
            print(f'  {key:<14} {result["test"][key]:.4f}')
        users, items = split.test[0, :5], split.test[1, :5]
        model.eval()
        pred = model.predict(users, items).cpu()
        truth = split.attrs['test']['rating'][:5]
        ids_u, ids_i = split.ids.get(USER), split.ids.get(ITEM)
        print('sample test predictions (original ids):')
        for b in range(users.numel()):
            u, i = int(users[b]), int(items[b])
            print(f'  user {ids_u[u] if ids_u is not None else u}, item '
                  f'{ids_i[i] if ids_i is not None else i}: predicted '
                  f'{float(pred[b]):.2f}, rated {float(truth[b]):g}')


#: Task kind -> its driver.
DRIVERS: dict[str, Any] = {RANKING: RankingDriver(),
                           NEXT_ITEM: NextItemDriver(),
                           KG: KGDriver(), CLICK: ClickDriver(),
                           RATING: RatingDriver()}

__all__ = ['DRIVERS', 'RankingDriver', 'NextItemDriver', 'KGDriver',
           'ClickDriver', 'RatingDriver',
           'UserError', 'metric_order']
