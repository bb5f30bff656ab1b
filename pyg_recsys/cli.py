"""The ``pyg-recsys`` command: ``train``, ``recommend`` and ``datasets``.

This module holds the project's single name table of models and datasets;
everything else takes classes and typed arguments.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pyg_recsys import typing as pt
from pyg_recsys.data.split import Split
from pyg_recsys.metrics import RANKING_METRICS

log = logging.getLogger('pyg_recsys')


# The name tables ############################################################


def _dataset_table() -> dict[str, tuple[type, dict[str, Any]]]:
    from pyg_recsys.datasets import (
        LightGCNDataset,
        MovieLens100K,
        SequenceDataset,
        SRGNNSessions,
    )
    table: dict[str, tuple[type, dict[str, Any]]] = {
        'movielens-100k': (MovieLens100K, {}),
    }
    for name in LightGCNDataset.names:
        table[name] = (LightGCNDataset, dict(name=name))
    for name in SRGNNSessions.names:
        table[name] = (SRGNNSessions, dict(name=name))
    for name in SequenceDataset.names:
        table[name] = (SequenceDataset, dict(name=name))
    return table


def is_session_dataset(name: str) -> bool:
    """Whether the CLI's dataset ``name`` is a session / sequence data set
    (the session models' data) rather than a user-item log."""
    from pyg_recsys.datasets import SequenceDataset, SRGNNSessions
    return _dataset_table()[name][0] in (SRGNNSessions, SequenceDataset)


def load_dataset(name: str, root: str | None = None,
                 raw_dir: str | None = None) -> Any:
    """The dataset of the CLI's name table."""
    cls, kwargs = _dataset_table()[name]
    return cls(root=root, raw_dir=raw_dir, **kwargs)


def _mf(split: Split, args: argparse.Namespace,
        ds: Any = None) -> torch.nn.Module:
    from pyg_recsys.nn.models import MF
    return MF(split.num_users, split.num_items, embedding_dim=args.dim,
              reg_weight=args.reg)


def _lightgcn(split: Split, args: argparse.Namespace,
              ds: Any = None) -> torch.nn.Module:
    from pyg_recsys.nn.models import LightGCN
    return LightGCN(split.num_users, split.num_items, split.train,
                    embedding_dim=args.dim, num_layers=args.layers,
                    reg_weight=args.reg)


def _ngcf(split: Split, args: argparse.Namespace,
          ds: Any = None) -> torch.nn.Module:
    from pyg_recsys.nn.models import NGCF
    kwargs: dict[str, Any] = {}
    if args.dropout is not None:
        kwargs['message_dropout'] = args.dropout
    return NGCF(split.num_users, split.num_items, split.train,
                embedding_dim=args.dim, num_layers=args.layers,
                reg_weight=args.reg, hidden_channels=args.dim,
                node_dropout=args.node_dropout, **kwargs)


def _simgcl(split: Split, args: argparse.Namespace,
            ds: Any = None) -> torch.nn.Module:
    from pyg_recsys.nn.models import SimGCL
    return SimGCL(split.num_users, split.num_items, split.train,
                  embedding_dim=args.dim, num_layers=args.layers,
                  reg_weight=args.reg, cl_weight=args.cl_weight,
                  eps=args.eps, cl_temperature=args.cl_temperature)


def _node_features(ds: Any, args: argparse.Namespace) -> dict[str, Any]:
    """``user_x`` / ``item_x`` of the dataset's graph, where it has them
    and ``--no-features`` is not set."""
    if ds is None or not args.features:
        return {}
    data = ds[0]
    return {f'{t}_x': data[t].x for t in ('user', 'item')
            if 'x' in data[t]}


def _gnn_kwargs(split: Split, args: argparse.Namespace,
                ds: Any) -> dict[str, Any]:
    return dict(embedding_dim=args.dim, num_layers=args.layers,
                reg_weight=args.reg, dropout=args.dropout or 0.0,
                **_node_features(ds, args))


def _sage(split: Split, args: argparse.Namespace,
          ds: Any = None) -> torch.nn.Module:
    from pyg_recsys.nn.models import SAGERecommender
    return SAGERecommender(split.num_users, split.num_items, split.train,
                           **_gnn_kwargs(split, args, ds))


def _gat(split: Split, args: argparse.Namespace,
         ds: Any = None) -> torch.nn.Module:
    from pyg_recsys.nn.models import GATRecommender
    return GATRecommender(split.num_users, split.num_items, split.train,
                          heads=args.heads, **_gnn_kwargs(split, args, ds))


# Session / sequence models: built on the data set's item count.


def _srgnn(split: Any, args: argparse.Namespace,
           ds: Any = None) -> torch.nn.Module:
    from pyg_recsys.nn.models import SRGNN
    return SRGNN(ds.num_items, embedding_dim=args.dim, num_steps=args.steps,
                 loss=args.loss)


def _tagnn(split: Any, args: argparse.Namespace,
           ds: Any = None) -> torch.nn.Module:
    from pyg_recsys.nn.models import TAGNN
    if args.loss != 'ce':
        raise SystemExit('pyg-recsys train: tagnn scores every candidate '
                         'with its own session vector and trains with '
                         '--loss ce only')
    return TAGNN(ds.num_items, embedding_dim=args.dim, num_steps=args.steps)


def _gru4rec(split: Any, args: argparse.Namespace,
             ds: Any = None) -> torch.nn.Module:
    from pyg_recsys.nn.models import GRU4Rec
    return GRU4Rec(ds.num_items, embedding_dim=args.dim,
                   hidden_size=args.hidden, num_layers=args.rnn_layers,
                   dropout=0.3 if args.dropout is None else args.dropout,
                   loss=args.loss, bpr_max_reg=args.bpr_max_reg)


def _sasrec(split: Any, args: argparse.Namespace,
            ds: Any = None) -> torch.nn.Module:
    from pyg_recsys.nn.models import SASRec
    return SASRec(ds.num_items, embedding_dim=args.dim,
                  num_blocks=args.blocks, num_heads=args.heads,
                  dropout=0.5 if args.dropout is None else args.dropout,
                  max_len=args.max_len or 50, loss=args.loss,
                  norm_first=not args.post_norm)


ModelBuilder = Callable[[Any, argparse.Namespace, Any], torch.nn.Module]
MODELS: dict[str, ModelBuilder] = {
    'mf': _mf,
    'lightgcn': _lightgcn,
    'ngcf': _ngcf,
    'sage': _sage,
    'gat': _gat,
    'simgcl': _simgcl,
    'srgnn': _srgnn,
    'tagnn': _tagnn,
    'gru4rec': _gru4rec,
    'sasrec': _sasrec,
}
# Next-item models, trained on session / sequence data sets.
SESSION_MODELS = ('srgnn', 'tagnn', 'gru4rec', 'sasrec')
# Models that can train on sampled subgraphs (--minibatch).
MINIBATCH = ('sage', 'gat')


NEGATIVES = ('uniform', 'popularity', 'shared', 'inbatch', 'ppr',
             'curriculum')


def build_model(split: Split, args: argparse.Namespace,
                ds: Any = None) -> torch.nn.Module:
    """The model ``args.model`` of the name table, built on the training
    pairs of ``split`` (``ds``, the dataset, supplies node features to the
    models that use them), with the pairwise objective ``args.pair_loss``
    where the model has one."""
    from pyg_recsys.nn.models import EmbeddingRecommender
    model = MODELS[args.model](split, args, ds)
    if isinstance(model, EmbeddingRecommender):
        model._check_pair_loss(args.pair_loss, args.temperature)
        model.pair_loss = args.pair_loss
        model.temperature = args.temperature
    return model


def build_sampler(split: Split, args: argparse.Namespace) -> Any:
    """The negative sampler ``args.neg`` over the training items of
    ``split`` (known positives are never negatives)."""
    from pyg_recsys import sampling as S
    train = split.csr('train')
    uniform = S.UniformSampler(split.num_items, exclude=train)
    if args.neg == 'uniform':
        return uniform
    if args.neg == 'popularity':
        count = torch.bincount(split.train[1], minlength=split.num_items)
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


def build_loader(split: Split, args: argparse.Namespace,
                 model: torch.nn.Module, ds: Any = None) -> Any:
    """The training loader of a run: (user, positive, negatives) batches
    from the sampler ``args.neg``."""
    from pyg_recsys.data.loader import LinkNeighborPairLoader, PairLoader
    if args.minibatch:
        if args.model not in MINIBATCH:
            raise SystemExit(f'pyg-recsys train: --minibatch works with '
                             f'{", ".join(MINIBATCH)}, not {args.model}')
        if args.neg != 'uniform':
            raise SystemExit('pyg-recsys train: --minibatch draws its own '
                             'negatives (LinkNeighborLoader); leave --neg '
                             'at uniform')
        neighbors = args.neighbors or [10] * args.layers
        if len(neighbors) != args.layers:
            raise SystemExit(f'pyg-recsys train: --neighbors needs one '
                             f'count per layer ({args.layers}), got '
                             f'{len(neighbors)}')
        return LinkNeighborPairLoader(split.graph(), split.train, neighbors,
                                      batch_size=args.batch_size,
                                      num_neg=args.num_neg, seed=args.seed)
    if args.neg == 'inbatch' and args.num_neg != 1:
        raise SystemExit('pyg-recsys train: --neg inbatch takes the other '
                         'pairs of the batch as negatives; leave --num-neg '
                         'at 1 and set --batch-size instead')
    return PairLoader(split.train, build_sampler(split, args),
                      batch_size=args.batch_size, num_neg=args.num_neg,
                      seed=args.seed)


# train ######################################################################


def _load_split(ds: Any, args: argparse.Namespace) -> Split:
    kwargs: dict[str, Any] = dict(seed=args.seed)
    if args.split_kind is not None:
        kwargs['kind'] = args.split_kind
    return ds.split(**kwargs)


def _plot_curve(history: list[dict], monitor: str, path: Path) -> bool:
    if not pt.WITH_MATPLOTLIB:
        log.warning('matplotlib is not installed; skipping %s', path)
        return False
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    pts = [(r['epoch'], r['val'][monitor]) for r in history if 'val' in r]
    if not pts:
        return False
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    ax.plot(*zip(*pts), marker='o', markersize=3)
    ax.set_xlabel('epoch')
    ax.set_ylabel(f'validation {monitor}')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _resolve_defaults(args: argparse.Namespace) -> None:
    """Options whose default depends on the kind of model."""
    session = args.model in SESSION_MODELS
    if args.batch_size is None:
        args.batch_size = 256 if session else 2048
    if session and args.max_len is None:
        args.max_len = 50
    if session and args.bucket is None:
        args.bucket = 20
    if session and args.monitor is None:
        args.monitor = 'hit@20'
    if args.monitor is None:
        args.monitor = 'recall@20'


def build_session_task(ds: Any, args: argparse.Namespace,
                       model: torch.nn.Module) -> Any:
    """The training / validation / test examples of a session run: one
    example per sequence (a target after every step) for causal models on
    per-user sequences unless ``--train-mode prefix``, else one per
    prefix."""
    from pyg_recsys.datasets import SRGNNSessions, next_item_task
    mode = args.train_mode
    if mode == 'auto':
        mode = ('sequence' if getattr(model, 'causal', False)
                and not isinstance(ds, SRGNNSessions) else 'prefix')
    if mode == 'sequence' and not getattr(model, 'causal', False):
        raise SystemExit(f'pyg-recsys train: {args.model} is not causal; '
                         f'it trains with --train-mode prefix')
    # a model with a fixed number of positions (SASRec) bounds the length
    max_len = args.max_len or getattr(model, 'max_len', None)
    try:
        return next_item_task(ds, mode=mode, max_len=max_len,
                              seed=args.seed)
    except ValueError as err:
        raise SystemExit(f'pyg-recsys train: {err}') from None


def _train_session(args: argparse.Namespace, out: Path,
                   config: dict[str, Any]) -> int:
    from pyg_recsys.data.session import SessionLoader
    from pyg_recsys.io import atomic_write_text
    from pyg_recsys.train import NextItemEvaluator, Trainer
    if not is_session_dataset(args.dataset):
        raise SystemExit(f'pyg-recsys train: {args.model} is a next-item '
                         f'model; give it a session or sequence data set '
                         f'(e.g. yoochoose1_64, beauty), not {args.dataset}')
    t0 = time.perf_counter()
    ds = load_dataset(args.dataset, args.root, args.raw_dir)
    model = build_model(None, args, ds)
    task = build_session_task(ds, args, model)
    log.info('dataset %s: %d items, %d/%d/%d train/val/test examples '
             '(%s, %.1f s)', args.dataset, task.num_items, len(task.train),
             len(task.val), len(task.test), task.info['mode'],
             time.perf_counter() - t0)
    out.mkdir(parents=True, exist_ok=True)
    sampled = args.sampled_negatives
    config['task'] = task.info
    config['protocol'] = dict(
        ranking='full over all items, nothing masked', ks=args.ks,
        monitor=args.monitor,
        sampled=(f'sampled{sampled}_* metrics: the target among {sampled} '
                 f'uniform items absent from the input sequence (SASRec '
                 f'protocol; for comparison with papers only)'
                 if sampled else None))
    atomic_write_text(json.dumps(config, indent=2), out / 'config.json')
    eval_bs = args.eval_batch_size or 512
    evaluator = NextItemEvaluator(
        {'val': SessionLoader(task.val, eval_bs),
         'test': SessionLoader(task.test, eval_bs)},
        task.num_items, ks=args.ks, num_negatives=sampled, seed=args.seed)
    loader = SessionLoader(task.train, args.batch_size, shuffle=True,
                           seed=args.seed, bucket=args.bucket or None)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr,
                                 weight_decay=args.weight_decay)
    trainer = Trainer(model, loader, evaluator, optimizer=optimizer,
                      epochs=args.epochs, eval_every=args.eval_every,
                      monitor=args.monitor, patience=args.patience,
                      out_dir=out, progress=args.progress,
                      lr_step=args.lr_step, lr_gamma=args.lr_gamma)
    result = trainer.fit(resume=args.resume)
    result.update(model=args.model, dataset=args.dataset, task=task.info,
                  protocol=config['protocol'])
    atomic_write_text(json.dumps(result, indent=2), out / 'metrics.json')
    _plot_curve(result['epochs'], args.monitor, out / 'curve.png')
    best = result['best_epoch']
    print(f'{args.model} on {args.dataset}: best epoch {best} of '
          f'{len(result["epochs"])} (validation {args.monitor} '
          f'{result["best_val"][args.monitor]:.4f}); '
          f'{len(task.test)} test examples')
    print('test (full ranking over all items, nothing masked):')
    keep = ('hit', 'mrr', 'ndcg')
    for key in sorted(result['test'], key=_metric_order):
        name = key.split('@')[0]
        if name in keep:
            print(f'  {key:<14} {result["test"][key]:.4f}')
    if sampled:
        print(f'test, {sampled} sampled negatives (SASRec protocol):')
        for key in sorted(result['test'], key=_metric_order):
            if key.startswith(f'sampled{sampled}_'):
                print(f'  {key:<24} {result["test"][key]:.4f}')
    model.eval()
    batch = task.test.collate(range(min(3, len(task.test))))
    _, top = model.recommend(batch, 5)
    ids = ds.item_ids
    print('sample next-item recommendations (original item ids):')
    for b in range(top.size(0)):
        steps = batch.seq[batch.length[:b].sum():batch.length[:b + 1].sum()]
        tail = ' '.join(str(int(ids[i])) for i in steps[-5:])
        recs = ' '.join(str(int(ids[i])) for i in top[b])
        print(f'  ... {tail} -> {recs}  (next: {int(ids[batch.y[b]])})')
    print(f'wrote {out}/metrics.json, best.pt, config.json'
          + (', curve.png' if (out / 'curve.png').exists() else ''))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pyg_recsys.io import atomic_save, atomic_write_text
    from pyg_recsys.train import (
        RankingEvaluator,
        Trainer,
        seed_everything,
    )

    _resolve_defaults(args)
    out = Path(args.out)
    config_path = out / 'config.json'
    config = {k: v for k, v in vars(args).items() if k != 'func'}
    if args.resume and config_path.exists():
        saved = json.loads(config_path.read_text())
        # options added since the run was made count as their defaults
        defaults = build_parser().parse_args(
            ['train', '--model', args.model, '--dataset', args.dataset,
             '--out', str(out)])
        _resolve_defaults(defaults)
        defaults = vars(defaults)
        free = ('resume', 'progress', 'eval_batch_size', 'quiet', 'epochs')
        diff = {k: (saved.get(k, defaults.get(k)), v)
                for k, v in config.items()
                if k not in free and saved.get(k, defaults.get(k)) != v}
        if diff:
            raise SystemExit(
                f'pyg-recsys train --resume: the arguments differ from the '
                f'run in {out} ({diff}); resume with the same arguments or '
                f'use another --out')
    elif (out / 'last.pt').exists() and not args.resume:
        raise SystemExit(
            f'pyg-recsys train: {out} already holds a run; pass --resume to '
            f'continue it or choose another --out')

    seed_everything(args.seed)
    if args.model in SESSION_MODELS:
        return _train_session(args, out, config)
    if is_session_dataset(args.dataset):
        raise SystemExit(f'pyg-recsys train: {args.dataset} is a session / '
                         f'sequence data set; train one of '
                         f'{", ".join(SESSION_MODELS)} on it')
    t0 = time.perf_counter()
    ds = load_dataset(args.dataset, args.root, args.raw_dir)
    split = _load_split(ds, args)
    split.audit()  # leak-free by construction; checked before every run
    log.info('dataset %s: %d users, %d items, %d/%d/%d train/val/test '
             '(%.1f s)', args.dataset, split.num_users, split.num_items,
             split.train.size(1), split.val.size(1), split.test.size(1),
             time.perf_counter() - t0)
    if split.val.size(1) == 0:
        raise SystemExit(f'pyg-recsys train: the {args.dataset} split has no '
                         f'validation part to select the model on')

    out.mkdir(parents=True, exist_ok=True)
    config['split'] = split.meta()
    config['protocol'] = dict(
        ranking='full', masked='train items for val; train+val for test',
        ks=args.ks, monitor=args.monitor)
    atomic_write_text(json.dumps(config, indent=2), config_path)
    atomic_save(split.to_dict(), out / 'split.pt')

    model = build_model(split, args, ds)
    loader = build_loader(split, args, model, ds)
    evaluator = RankingEvaluator(split, ks=args.ks,
                                 batch_size=args.eval_batch_size)
    trainer = Trainer(model, loader, evaluator, lr=args.lr,
                      epochs=args.epochs, eval_every=args.eval_every,
                      monitor=args.monitor, patience=args.patience,
                      out_dir=out, progress=args.progress)
    result = trainer.fit(resume=args.resume)
    result.update(model=args.model, dataset=args.dataset,
                  split=split.meta(), protocol=config['protocol'])
    atomic_write_text(json.dumps(result, indent=2), out / 'metrics.json')
    _plot_curve(result['epochs'], args.monitor, out / 'curve.png')

    best = result['best_epoch']
    print(f'{args.model} on {args.dataset}: best epoch {best} of '
          f'{len(result["epochs"])} (validation {args.monitor} '
          f'{result["best_val"][args.monitor]:.4f})')
    print('test (full ranking, train+val items masked):')
    for key in sorted(result['test'], key=_metric_order):
        print(f'  {key:<14} {result["test"][key]:.4f}')
    print(f'wrote {out}/metrics.json, best.pt, config.json'
          + (', curve.png' if (out / 'curve.png').exists() else ''))
    return 0


def _metric_order(key: str) -> tuple[int, str]:
    name, _, k = key.partition('@')
    return (int(k) if k.isdigit() else 0, name)


# recommend ##################################################################


def cmd_recommend(args: argparse.Namespace) -> int:
    run = Path(args.run)
    config_path = run / 'config.json'
    if not config_path.exists() or not (run / 'best.pt').exists():
        raise SystemExit(f'pyg-recsys recommend: {run} has no config.json '
                         f'and best.pt; train a model there first')
    config = json.loads(config_path.read_text())
    if config.get('model') in SESSION_MODELS:
        raise SystemExit(f'pyg-recsys recommend: {run} holds a next-item '
                         f'model ({config["model"]}), which recommends for '
                         f'a session, not a user; its metrics.json and the '
                         f'train output show sample recommendations, and '
                         f'model.recommend(batch, k) does it in Python')
    ns = argparse.Namespace(**config)
    split = Split.from_dict(torch.load(run / 'split.pt', weights_only=False))
    ds = load_dataset(ns.dataset, args.root or ns.root, ns.raw_dir)
    inter = ds.interactions
    try:
        user = inter.user_index(_parse_id(args.user, inter.user_ids))
    except KeyError:
        raise SystemExit(f'pyg-recsys recommend: user {args.user!r} is not '
                         f'in {ns.dataset}') from None
    model = build_model(split, ns, ds)
    model.load_state_dict(torch.load(run / 'best.pt',
                                     weights_only=False)['model'])
    model.eval()
    from pyg_recsys.ops.csr import CSR
    seen = CSR.union(split.csr('train'), split.csr('val'), split.csr('test'))
    scores, items = model.recommend(torch.tensor([user]), args.k,
                                    exclude=seen)
    titles = getattr(ds, 'item_titles', None)
    print(f'top {args.k} for user {args.user} ({ns.model} on {ns.dataset}, '
          f'{int(seen.degree()[user])} known items excluded):')
    for rank, (s, i) in enumerate(zip(scores[0].tolist(),
                                      items[0].tolist()), 1):
        if i < 0:
            break
        orig = inter.item_ids[i]
        title = f'  {titles[i]}' if titles is not None else ''
        print(f'{rank:>3}. item {orig}{title}  (score {s:.3f})')
    return 0


def _parse_id(text: str, ids: Any) -> Any:
    """Original ids may be ints or strings; match the dataset's type."""
    first = ids[0] if len(ids) else None
    if isinstance(first, str):
        return text
    try:
        return type(first)(text) if first is not None else int(text)
    except ValueError:
        return text


# datasets ###################################################################


def cmd_datasets(args: argparse.Namespace) -> int:
    for name, (cls, kwargs) in _dataset_table().items():
        print(f'{name:<16} {cls.locate(root=args.root, **kwargs)}')
    return 0


# entry point ################################################################


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='pyg-recsys',
        description='Graph and sequential recommendation on PyG.')
    p.add_argument('-q', '--quiet', action='store_true',
                   help='only warnings on stderr (no per-epoch log lines)')
    sub = p.add_subparsers(dest='command', required=True)

    t = sub.add_parser('train', help='train and evaluate a recommender')
    t.add_argument('--model', required=True, choices=sorted(MODELS))
    t.add_argument('--dataset', required=True,
                   choices=list(_dataset_table()))
    t.add_argument('--raw-dir', default=None,
                   help='folder with the upstream raw files as they come')
    t.add_argument('--root', default=None,
                   help='writable data root for processed files '
                   '(default: $PYG_RECSYS_ROOT or ./datasets)')
    t.add_argument('--split', dest='split_kind', default=None,
                   help='split kind (default: the dataset\'s own)')
    t.add_argument('--epochs', type=int, default=100)
    t.add_argument('--lr', type=float, default=1e-3)
    t.add_argument('--dim', type=int, default=64)
    t.add_argument('--layers', type=int, default=3)
    t.add_argument('--reg', type=float, default=1e-4)
    t.add_argument('--batch-size', type=int, default=None,
                   help='training batch (default 2048 pairs; session '
                   'models: 256 examples)')
    t.add_argument('--dropout', type=float, default=None,
                   help='ngcf: message dropout (default 0.1); sage/gat: '
                   'dropout between layers (default 0)')
    t.add_argument('--node-dropout', type=float, default=0.0,
                   help='ngcf: share of user-item edges dropped per step')
    t.add_argument('--heads', type=int, default=2, help='gat: heads')
    t.add_argument('--cl-weight', type=float, default=0.2,
                   help='simgcl: weight of the contrastive loss (lambda)')
    t.add_argument('--eps', type=float, default=0.1,
                   help='simgcl: norm of the noise added per layer')
    t.add_argument('--cl-temperature', type=float, default=0.2,
                   help='simgcl: InfoNCE temperature (tau)')
    t.add_argument('--no-features', dest='features', action='store_false',
                   help='sage/gat: ignore the dataset\'s user/item '
                   'features (MovieLens-100K has them)')
    t.add_argument('--minibatch', action='store_true',
                   help='sage/gat: train on sampled subgraphs '
                   '(LinkNeighborLoader) instead of the full graph')
    t.add_argument('--neighbors', type=int, nargs='+', default=None,
                   help='--minibatch: neighbours sampled per layer '
                   '(default 10 each)')
    t.add_argument('--neg', choices=NEGATIVES, default='uniform',
                   help='negative sampler: uniform or popularity (exact, '
                   'known positives excluded), shared (one set per batch '
                   'scored by every user), inbatch (the batch\'s other '
                   'positives), ppr (personalized-PageRank hard '
                   'negatives), curriculum (uniform + epoch-1 ppr ones)')
    t.add_argument('--num-neg', type=int, default=1,
                   help='negatives per pair (shared: per batch)')
    t.add_argument('--pair-loss', choices=('bpr', 'softmax'), default='bpr',
                   help='pairwise objective (softmax: sampled softmax '
                   'cross-entropy over the negatives)')
    t.add_argument('--temperature', type=float, default=1.0,
                   help='softmax temperature of --pair-loss softmax')
    t.add_argument('--hard-ranks', type=int, nargs=2, default=[10, 100],
                   metavar=('LO', 'HI'),
                   help='ppr/curriculum: rank window of hard candidates')
    t.add_argument('--ppr-walks', type=int, default=1000,
                   help='ppr/curriculum: random walks per user')
    t.add_argument('--max-hard', type=int, default=4,
                   help='curriculum: most hard negatives per pair')
    s = t.add_argument_group('session / sequence models (srgnn, tagnn, '
                             'gru4rec, sasrec)')
    s.add_argument('--max-len', type=int, default=None,
                   help='keep the last N steps of every example (default '
                   '50; 0: no limit, except sasrec\'s 50 positions)')
    s.add_argument('--loss', choices=('ce', 'bce', 'bpr-max'), default='ce',
                   help='ce: softmax over all items; bce: one sampled '
                   'negative (SASRec paper); bpr-max: in-batch negatives '
                   '(GRU4Rec)')
    s.add_argument('--bpr-max-reg', type=float, default=1.0,
                   help='bpr-max: score regularisation')
    s.add_argument('--train-mode', choices=('auto', 'prefix', 'sequence'),
                   default='auto',
                   help='prefix: one example per prefix; sequence: one '
                   'per user sequence with a target at every step (causal '
                   'models; auto picks it for gru4rec/sasrec on per-user '
                   'data)')
    s.add_argument('--bucket', type=int, default=None,
                   help='sort each pool of N shuffled batches by length '
                   'before batching, so padded models skip most padding '
                   '(default 20; 0: off)')
    s.add_argument('--steps', type=int, default=1,
                   help='srgnn/tagnn: gated graph steps')
    s.add_argument('--hidden', type=int, default=128,
                   help='gru4rec: GRU hidden size')
    s.add_argument('--rnn-layers', type=int, default=1,
                   help='gru4rec: GRU layers')
    s.add_argument('--blocks', type=int, default=2,
                   help='sasrec: self-attention blocks (heads: --heads)')
    s.add_argument('--post-norm', action='store_true',
                   help='sasrec: post-norm blocks and normalised input '
                   'embeddings (BERT / RecBole layout) instead of the '
                   'paper\'s pre-norm')
    s.add_argument('--weight-decay', type=float, default=0.0,
                   help='Adam weight decay (SR-GNN: 1e-5)')
    s.add_argument('--lr-step', type=int, default=None,
                   help='decay the learning rate every N epochs (SR-GNN: '
                   '3)')
    s.add_argument('--lr-gamma', type=float, default=0.1,
                   help='--lr-step: decay factor')
    s.add_argument('--sampled-negatives', type=int, default=None,
                   metavar='N',
                   help='also report the target ranked among N sampled '
                   'items (SASRec: 100), labelled sampledN_*')
    t.add_argument('--eval-every', type=int, default=1)
    t.add_argument('--eval-batch-size', type=int, default=None,
                   help='users per evaluation chunk (default: about 4M '
                   'scores per chunk)')
    t.add_argument('--patience', type=int, default=None,
                   help='stop after this many validations without gain')
    t.add_argument('--monitor', default=None,
                   help='validation metric of model selection (default '
                   'recall@20; session models: hit@20)')
    t.add_argument('--ks', type=int, nargs='+', default=[10, 20])
    t.add_argument('--seed', type=int, default=0)
    t.add_argument('--out', required=True)
    t.add_argument('--resume', action='store_true',
                   help='continue the run in --out from its last epoch')
    t.add_argument('--no-progress', dest='progress', action='store_false')
    t.set_defaults(func=cmd_train)

    r = sub.add_parser('recommend', help='top-K items for a user of a run')
    r.add_argument('--run', required=True)
    r.add_argument('--user', required=True, help='original user id')
    r.add_argument('--k', type=int, default=10)
    r.add_argument('--root', default=None)
    r.set_defaults(func=cmd_recommend)

    d = sub.add_parser('datasets', help='list datasets and where each is')
    d.add_argument('--root', default=None)
    d.set_defaults(func=cmd_datasets)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format='%(asctime)s %(name)s %(message)s', stream=sys.stderr)
    if (args.command == 'train' and args.monitor is not None
            and args.monitor.split('@')[0] not in RANKING_METRICS):
        raise SystemExit(f'pyg-recsys train: unknown --monitor '
                         f'{args.monitor!r}; use e.g. recall@20 or ndcg@20')
    return args.func(args)


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
