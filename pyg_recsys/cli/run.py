"""The commands behind ``pyg-recsys``: ``train`` (options checked, data
loaded, the model built, then the run folder written), ``recommend`` and
``datasets``.

A run folder is self-contained: ``config.json`` (every option, absolute
paths, the data's fingerprint, the split record and the protocol),
``split.pt``, ``last.pt`` / ``best.pt`` (read with ``weights_only=True``),
``metrics.json`` and ``curve.png``.  One process writes a run folder at a
time (``.lock``); a moved folder resumes (paths are not compared, the
data's fingerprint is).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from pyg_recsys import typing as pt
from pyg_recsys.cli.options import DEFAULTS, build_parser
from pyg_recsys.cli.table import (
    DATASETS,
    KG,
    MODELS,
    NEXT_ITEM,
    RANKING,
    RATING,
    datasets_of,
    models_of,
)
from pyg_recsys.cli.tasks import DRIVERS, UserError
from pyg_recsys.io import (
    DamagedFileError,
    LockedError,
    atomic_write_text,
    fingerprint,
    folder_lock,
    remove_orphans,
)
from pyg_recsys.metrics import RANKING_METRICS

log = logging.getLogger('pyg_recsys')

#: Exceptions that are the user's to fix: one line, no traceback.
USER_ERRORS = (UserError, ValueError, FileNotFoundError, LockedError,
               DamagedFileError, NotADirectoryError, PermissionError)

# options of every run; the others belong to a task kind or a model
_RUN_OPTIONS = frozenset({
    'command', 'quiet', 'debug', 'model', 'dataset', 'raw_dir', 'root',
    'epochs', 'lr', 'weight_decay', 'lr_step',
    'lr_gamma', 'batch_size', 'eval_every', 'eval_batch_size', 'patience',
    'monitor', 'ks', 'seed', 'out', 'resume', 'progress', 'device',
    'deterministic'})
# flags and their values when not given
_FLAGS = {'features': True, 'minibatch': False, 'post_norm': False,
          'reciprocal': False, 'normalize_entities': False, 'resample': False,
          'attention': True,
          'side': False, 'resume': False, 'progress': True, 'quiet': False,
          'debug': False, 'deterministic': False, 'device': 'auto'}
# options that may change between a run and its --resume
# (a run trained on a GPU may go on on a CPU, and the other way round)
_FREE = frozenset({'resume', 'progress', 'eval_batch_size', 'quiet',
                   'debug', 'epochs', 'out', 'root', 'raw_dir', 'device',
                   'deterministic'})


def given_options(args: argparse.Namespace) -> set[str]:
    """The options given on the command line (not left at their
    default)."""
    return {k for k, v in vars(args).items()
            if (v != _FLAGS[k] if k in _FLAGS else v is not None)}


def allowed_options(model: str) -> set[str]:
    """The options a model of the table takes: every run's, its task
    kind's and its own."""
    spec = MODELS[model]
    out = set(_RUN_OPTIONS) | set(DRIVERS[spec.task].options)
    out |= set(spec.dests)
    if spec.features:
        out.add('features')
    if spec.minibatch:
        out |= {'minibatch', 'neighbors'}
    if spec.typed_graph:
        out.add('side')
    if spec.workers:
        out.add('workers')
    if spec.kg and spec.task == RANKING:
        out.add('kg_batch_size')
    return out - spec.not_taken


def _flag(dest: str) -> str:
    return '--' + {'split_kind': 'split', 'features': 'no-features',
                   'progress': 'no-progress', 'side': 'side-relations',
                   'social': 'no-social'}.get(
                       dest, dest).replace('_', '-')


def resolve_defaults(args: argparse.Namespace) -> None:
    """Fills the options left unset with their defaults (some depend on
    the model's task kind)."""
    spec = MODELS[args.model]
    driver = DRIVERS[spec.task]
    defaults = dict(DEFAULTS, **getattr(driver, 'defaults', {}),
                    **spec.defaults)
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, list(value) if isinstance(value, list)
                    else value)
    if args.batch_size is None:
        args.batch_size = driver.default_batch_size
    if args.workers is None:
        args.workers = 0
    if args.monitor is None:
        args.monitor = (driver.monitor_for(args)
                        if hasattr(driver, 'monitor_for')
                        else driver.default_monitor)
    if driver.kind == NEXT_ITEM:
        if args.max_len is None:
            args.max_len = 50
        if args.bucket is None:
            args.bucket = 20


def _positive(args: argparse.Namespace, *names: str,
              allow_zero: bool = False) -> None:
    for name in names:
        value = getattr(args, name)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        low = 0 if allow_zero else 1
        bad = [v for v in values if v < low]
        if bad:
            need = '>= 0' if allow_zero else '>= 1'
            raise UserError(f'{_flag(name)} must be {need}, got '
                            f'{bad[0]}')


def check_options(args: argparse.Namespace) -> None:
    """Checks the options that need no data (the model and the data set
    of one task kind, only options the model takes, values in range, a
    monitor among the metrics computed) and fills in the defaults."""
    spec = MODELS[args.model]
    tasks = DATASETS[args.dataset].tasks
    if spec.task not in tasks:
        models = [m for t in tasks for m in models_of(t)]
        raise UserError(
            f'{args.model} is a {spec.task} model but {args.dataset} is a '
            f'{"/".join(tasks)} data set; {spec.task} data sets: '
            f'{", ".join(datasets_of(spec.task))}; models for '
            f'{args.dataset}: {", ".join(models) or "none yet"}')
    given = given_options(args)
    extra = sorted(given - allowed_options(args.model))
    if extra:
        takers = [m for m in MODELS if extra[0] in allowed_options(m)]
        raise UserError(f'{_flag(extra[0])} does not apply to {args.model}'
                        + (f' (it is an option of {", ".join(takers)})'
                           if takers else ''))
    resolve_defaults(args)
    _positive(args, 'kgat_dims', 'kg_batch_size', 'kg_neighbors')
    _positive(args, 'epochs', 'eval_every', 'patience', 'batch_size',
              'eval_batch_size', 'ks', 'num_neg', 'dim', 'lr_step', 'heads',
              'steps', 'hidden', 'rnn_layers', 'blocks', 'ppr_walks',
              'sampled_negatives', 'neighbors', 'walks')
    _positive(args, 'workers', allow_zero=True)
    if args.restart_prob is not None and not 0 < args.restart_prob < 1:
        raise UserError(f'--restart-prob must lie in (0, 1), got '
                        f'{args.restart_prob}')
    if spec.negatives is not None and args.neg not in spec.negatives:
        raise UserError(f'--neg {args.neg} does not apply to {args.model}; '
                        f'use {" or ".join(spec.negatives)}')
    if spec.cls == 'PinSage' and args.neighbors and \
            len(args.neighbors) != 1:
        raise UserError(f'--neighbors takes one count for pinsage (the '
                        f'neighbours of every item), got {args.neighbors}')
    _positive(args, 'layers', 'max_len', 'bucket', 'max_hard',
              allow_zero=True)
    for name in ('lr', 'temperature', 'cl_temperature', 'margin'):
        if getattr(args, name) is not None and not getattr(args, name) > 0:
            raise UserError(f'{_flag(name)} must be > 0, got '
                            f'{getattr(args, name)}')
    for name in ('dropout', 'node_dropout'):
        value = getattr(args, name)
        if value is not None and not 0 <= value < 1:
            raise UserError(f'{_flag(name)} must lie in [0, 1), got '
                            f'{value}')
    if args.split_ratios is not None and (
            min(args.split_ratios) < 0
            or abs(sum(args.split_ratios) - 1) > 1e-6):
        raise UserError(f'--split-ratios must be three non-negative numbers '
                        f'summing to 1, got {args.split_ratios}')
    _check_monitor(args)
    if args.minibatch:
        if args.neg != 'uniform':
            raise UserError('--minibatch draws its own negatives '
                            '(LinkNeighborLoader); leave --neg at uniform')
        if args.neighbors and len(args.neighbors) != args.layers:
            raise UserError(f'--neighbors needs one count per layer '
                            f'({args.layers}), got {len(args.neighbors)}')
    if spec.task == KG and args.neg not in DRIVERS[KG].negatives:
        raise UserError(f'--neg {args.neg} does not apply to '
                        f'knowledge-graph completion; use '
                        f'{" or ".join(DRIVERS[KG].negatives)}')
    if spec.task == KG and args.neg == 'inbatch' and 'num_neg' in given:
        raise UserError('--neg inbatch takes the other triples of the '
                        'batch as negatives; leave out --num-neg and set '
                        '--batch-size instead')
    if spec.task == RANKING and args.neg == 'inbatch' and args.num_neg != 1:
        raise UserError('--neg inbatch takes the other pairs of the batch '
                        'as negatives; leave --num-neg at 1 and set '
                        '--batch-size instead')
    if args.hard_ranks is not None and not 0 <= args.hard_ranks[0] < \
            args.hard_ranks[1]:
        raise UserError(f'--hard-ranks needs 0 <= LO < HI, got '
                        f'{args.hard_ranks}')


def _check_monitor(args: argparse.Namespace) -> None:
    name, at, k = args.monitor.partition('@')
    driver = DRIVERS[MODELS[args.model].task]
    if args.monitor in getattr(driver, 'click_metrics', ()):
        if not driver.labelled(args):
            raise UserError(f'--monitor {args.monitor} needs labelled '
                            f'click-through rows, which the '
                            f'{args.split_kind or "default"} split of '
                            f'{args.dataset} does not have; monitor a '
                            f'ranking metric such as recall@20')
        return
    if MODELS[args.model].task == RATING:
        if args.monitor not in driver.lower_is_better:
            raise UserError(f'unknown --monitor {args.monitor!r} for rating '
                            f'prediction; use one of '
                            f'{list(driver.lower_is_better)}')
        return
    if MODELS[args.model].task == KG:
        if not (args.monitor in ('mrr', 'mrr_head', 'mrr_tail')
                or (name == 'hits' and at and k.isdigit())):
            raise UserError(f'unknown --monitor {args.monitor!r} for '
                            f'knowledge-graph completion; use mrr, '
                            f'mrr_head, mrr_tail or hits@K (K among --ks)')
        if at and int(k) not in args.ks:
            raise UserError(f'--monitor {args.monitor} needs the cut-off '
                            f'{k} among --ks {args.ks}')
        return
    sampled = args.sampled_negatives
    base = name
    if sampled and name.startswith(f'sampled{sampled}_'):
        base = name[len(f'sampled{sampled}_'):]
    if not at or base not in RANKING_METRICS or not k.isdigit():
        raise UserError(f'unknown --monitor {args.monitor!r}; use a metric '
                        f'of {RANKING_METRICS} at a cut-off of --ks, e.g. '
                        f'recall@20 or ndcg@20')
    if int(k) not in args.ks:
        raise UserError(f'--monitor {args.monitor} needs the cut-off {k} '
                        f'among --ks {args.ks}')


# -- data and models ----------------------------------------------------------

def load_dataset(name: str, root: str | None = None,
                 raw_dir: str | None = None) -> Any:
    """The data set ``name`` of the table."""
    spec = DATASETS[name]
    return spec.dataset_class()(root=root, raw_dir=raw_dir, **spec.kwargs)


def load_data(args: argparse.Namespace) -> dict[str, Any]:
    """The data of a run: the data set and what its task driver makes of
    it (a split for ranking)."""
    driver = DRIVERS[MODELS[args.model].task]
    ds = load_dataset(args.dataset, args.root, args.raw_dir)
    data = driver.load(ds, args)
    if max(args.ks) > data['num_items']:
        raise UserError(f'--ks {max(args.ks)} is larger than the '
                        f'{data["num_items"]} items of {args.dataset}: '
                        f'every metric at that cut-off would be 1')
    return data


def build_model(args: argparse.Namespace, data: Any) -> torch.nn.Module:
    """The model ``args.model`` of the name table: the task's inputs (sizes,
    the training graph, node features) and the model's options as
    constructor arguments (options left unset are not passed, so the
    model's own defaults apply).  ``data`` is what :func:`load_data`
    returns, or a :class:`~pyg_recsys.data.split.Split` for pairwise
    models."""
    spec = MODELS[args.model]
    if not isinstance(data, dict):
        data = dict(split=data, num_items=data.num_items)
    kwargs = DRIVERS[spec.task].model_inputs(data, spec, args)
    for opt in spec.options:
        value = getattr(args, opt.dest, None)
        if value is not None:
            key, value = opt.kwarg(value)
            kwargs[key] = value
    return spec.model_class()(**kwargs)


def build_loader(args: argparse.Namespace, data: Any,
                 model: torch.nn.Module) -> Any:
    """The training loader of a run (see :func:`build_model` for
    ``data``)."""
    if not isinstance(data, dict):
        data = dict(split=data, num_items=data.num_items)
    return DRIVERS[MODELS[args.model].task].loader(data, args, model)


# -- the run folder -----------------------------------------------------------

def _read_config(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DamagedFileError(
            f'{path}: the run\'s config is damaged ({e}); restore it, or '
            f'delete the run folder to start afresh') from None


def _check_resume(args: argparse.Namespace, config: dict[str, Any],
                  saved: dict[str, Any], out: Path) -> None:
    """Raises when ``--resume`` options differ from the run's; options
    added since the run was made count as their defaults."""
    defaults = build_parser().parse_args(
        ['train', '--model', args.model, '--dataset', args.dataset,
         '--out', str(out)])
    resolve_defaults(defaults)
    defaults = vars(defaults)
    diff = {k: (saved.get(k, defaults.get(k)), v)
            for k, v in config.items()
            if k in defaults and k not in _FREE
            and saved.get(k, defaults.get(k)) != v}
    if diff:
        raise UserError(f'--resume: the arguments differ from the run in '
                        f'{out} ({diff}); resume with the same arguments or '
                        f'use another --out')


def _data_source(ds: Any) -> dict[str, Any]:
    """Where the data came from, with a fingerprint of its content."""
    source = getattr(ds, 'source', None)
    if isinstance(source, dict):
        return source
    path = ds.info.get('source')
    files = [path] if path and os.path.isfile(path) else []
    raw_dir = getattr(ds, 'raw_dir', None)
    if raw_dir and not files:
        files = sorted(str(p) for p in Path(raw_dir).iterdir()
                       if p.is_file())
    return {'raw_dir': os.path.abspath(raw_dir) if raw_dir else None,
            'files': [os.path.abspath(f) for f in files],
            'cache_key': fingerprint(files, type(ds).__name__)}


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


# -- train --------------------------------------------------------------------

def cmd_train(args: argparse.Namespace) -> int:
    """``pyg-recsys train``; under ``torchrun`` every process runs it, and
    only rank 0 writes the run folder and prints."""
    from pyg_recsys.ops.device import dist_info, keep_freed_memory
    from pyg_recsys.train import init_distributed, shutdown_distributed
    check_options(args)
    keep_freed_memory()
    try:
        device = init_distributed(args.device)
    except ValueError as e:
        raise UserError(f'--device: {e}') from None
    rank, world = dist_info()
    try:
        return _train(args, device, rank, world)
    finally:
        shutdown_distributed()


def _train(args: argparse.Namespace, device: torch.device, rank: int,
           world: int) -> int:
    from pyg_recsys.train import Trainer, adam, seed_everything
    spec = MODELS[args.model]
    driver = DRIVERS[spec.task]
    out = Path(args.out).resolve()
    args.out = str(out)
    for name in ('root', 'raw_dir'):
        if getattr(args, name):
            setattr(args, name, os.path.abspath(getattr(args, name)))
    config = {k: v for k, v in vars(args).items()
              if k not in ('command', 'quiet', 'debug')}
    config_path = out / 'config.json'
    if out.exists() and not out.is_dir():
        raise UserError(f'--out {out} is a file, not a folder')
    if args.resume and config_path.exists():
        saved = _read_config(config_path)
        _check_resume(args, config, saved, out)
    elif (out / 'last.pt').exists() and not args.resume:
        raise UserError(f'{out} already holds a run; pass --resume to '
                        f'continue it or choose another --out')

    # everything that can fail on the user's data or options, before any
    # write into the run folder
    seed_everything(args.seed, deterministic=args.deterministic)
    data = load_data(args)
    source = _data_source(data['ds'])
    if args.resume and config_path.exists():
        key = saved.get('source', {}).get('cache_key')
        if key is not None and key != source['cache_key']:
            raise UserError(
                f'--resume: the data differ from the run\'s (raw files '
                f'{source["files"]} fingerprint {source["cache_key"]}, the '
                f'run was trained on {key}); point --raw-dir / --root at '
                f'the run\'s data or use another --out')
    model = build_model(args, data)
    driver.prepare(data, args, model)
    loader = driver.loader(data, args, model)
    evaluator = driver.evaluator(data, args)
    model.to(device)  # the fused optimizer is made for the device
    optimizer = adam(model.parameters(), lr=args.lr,
                     weight_decay=args.weight_decay)

    # one process writes the run folder (rank 0 under torchrun); the
    # others read its checkpoints when resuming
    lock = (folder_lock(out, blocking=False, what='run folder')
            if rank == 0 else contextlib.nullcontext())
    with lock:
        if rank == 0:
            if (out / 'last.pt').exists() and not args.resume:
                raise UserError(f'{out} already holds a run; pass --resume '
                                f'to continue it or choose another --out')
            removed = remove_orphans(out)
            if removed:
                log.info('removed %d temporary files of an interrupted run',
                         len(removed))
            config.update(source=source, device=str(device),
                          world_size=world, **driver.record(data, args))
            if 'split' in data:  # what load_run checks the weights by
                from pyg_recsys.data.split import graph_fingerprint
                config['graph_fingerprint'] = graph_fingerprint(
                    data['split'])
            atomic_write_text(json.dumps(config, indent=2), config_path)
            driver.save(data, out)
        trainer = Trainer(model, loader, evaluator, optimizer=optimizer,
                          epochs=args.epochs, eval_every=args.eval_every,
                          monitor=args.monitor, patience=args.patience,
                          mode=('min' if args.monitor in getattr(
                              driver, 'lower_is_better', ()) else 'max'),
                          out_dir=out, progress=args.progress,
                          lr_step=args.lr_step, lr_gamma=args.lr_gamma,
                          device=device)
        t0 = time.perf_counter()
        result = trainer.fit(resume=args.resume)
        log.info('trained in %.1f s on %s%s', time.perf_counter() - t0,
                 device, f' x {world} processes' if world > 1 else '')
        if rank != 0:
            return 0
        result.update(model=args.model, dataset=args.dataset,
                      device=str(device), world_size=world,
                      **{k: config[k] for k in ('split', 'task', 'protocol')
                         if k in config})
        atomic_write_text(json.dumps(result, indent=2), out / 'metrics.json')
        _plot_curve(result['epochs'], args.monitor, out / 'curve.png')
    driver.report(data, args, result, model)
    print(f'wrote {out}/metrics.json, best.pt, config.json'
          + (', curve.png' if (out / 'curve.png').exists() else ''))
    return 0


# -- datasets -----------------------------------------------------------------

def cmd_datasets(args: argparse.Namespace) -> int:
    for name, spec in DATASETS.items():
        where = spec.dataset_class().locate(root=args.root, **spec.kwargs)
        print(f'{name:<18} {"/".join(spec.tasks):<20} {where}')
    return 0


COMMANDS = {'train': cmd_train, 'datasets': cmd_datasets}

__all__ = ['COMMANDS', 'USER_ERRORS', 'resolve_defaults', 'check_options',
           'load_dataset', 'load_data', 'build_model', 'build_loader',
           'given_options', 'allowed_options']
