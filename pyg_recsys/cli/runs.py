"""A trained run folder back as a recommender: :func:`load_run`.

A run folder (``pyg-recsys train --out DIR``) holds the run's options
(``config.json``), its split with the id maps (``split.pt``; session runs
rebuild their examples from the data set named in the config) and the
selected weights (``best.pt``).  :func:`load_run` rebuilds the model
through the command line's name table, checks that the graph it is built
on is the one the weights were trained on, and returns a
:class:`LoadedRun` that answers in raw ids.
"""
from __future__ import annotations

import argparse
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pyg_recsys.cli.table import (
    DATASETS,
    KG,
    MODELS,
    NEXT_ITEM,
    RATING,
)
from pyg_recsys.cli.tasks import UserError
from pyg_recsys.io import DamagedFileError, safe_load
from pyg_recsys.ops.csr import CSR
from pyg_recsys.schema import ITEM, USER

log = logging.getLogger(__name__)


class UnknownIdError(UserError):
    """A raw user or item id the run does not know (the message names
    it)."""


@dataclass
class LoadedRun:
    """A trained model with what it needs to answer in raw ids.

    Attributes:
        path: The run folder.
        model: The model at its selected weights, in evaluation mode, on
            :attr:`device`.
        task: Its task kind (``'ranking'``, ``'next-item'``, ``'rating'``,
            ``'click-through'``, ``'kg-completion'``).
        config: The run's ``config.json``.
        args: The run's ``train`` options as parsed.
        split: The user-item (or knowledge-graph) split the model was
            trained on; ``None`` for session runs.
        data: What the task driver loaded (the data set of session runs).
        ids: Raw ids per node type (``'user'``, ``'item'``, ``'entity'``,
            ``'relation'``).
        device: Where the model is.
    """

    path: Path
    model: torch.nn.Module = field(repr=False)
    task: str
    config: dict[str, Any] = field(repr=False)
    args: argparse.Namespace = field(repr=False)
    split: Any = field(repr=False)
    data: dict[str, Any] = field(repr=False)
    ids: dict[str, np.ndarray] = field(repr=False)
    device: torch.device
    _index: dict[str, dict[str, int]] = field(default_factory=dict,
                                              repr=False)
    _known: CSR | None = field(default=None, repr=False)

    # -- ids ---------------------------------------------------------------
    @property
    def num_items(self) -> int:
        """Number of items (entities of knowledge-graph runs)."""
        return len(self.ids.get(ITEM, self.ids.get('entity', ())))

    def index_of(self, kind: str, raw: Any) -> int:
        """The internal id of the raw id ``raw`` of node type ``kind``,
        compared as text (``'7'`` and ``7`` are the same user); where the
        raw ids are integers, ``'007'`` and ``'+7'`` are ``7`` too."""
        if kind not in self.ids:
            raise UserError(f'{self.path}: a {self.task} run has no '
                            f'{kind} ids')
        if kind not in self._index:
            self._index[kind] = {str(v): n for n, v in
                                 enumerate(self.ids[kind].tolist())}
        key = str(raw).strip()
        if self.ids[kind].dtype.kind in 'iu' and \
                re.fullmatch(r'[+-]?[0-9]{1,19}', key):
            key = str(int(key))
        if key not in self._index[kind]:
            hint = ('; leave out the items the run never saw'
                    if kind == ITEM else '')
            raise UnknownIdError(
                f'{kind} {key!r} is not in the run\'s data '
                f'({self.args.dataset}, {len(self.ids[kind])} {kind}s)'
                f'{hint}')
        return self._index[kind][key]

    def known_items(self) -> CSR:
        """Every item known for each user (training, validation and test
        interactions): what a user's recommendations leave out."""
        if self._known is None:
            self._known = self.split.known().to(self.device)
        return self._known

    def _check_k(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise UserError(f'k must be an integer, got {k!r}')
        if not 1 <= k <= self.num_items:
            raise UserError(f'k must be in [1, {self.num_items}], got {k}')
        return int(k)

    # -- recommendations ---------------------------------------------------
    def recommend(self, user: Any = None, session: Any = None,
                  k: int = 10, exclude_known: bool = True
                  ) -> list[tuple[Any, float]]:
        """The ``k`` best items, as ``[(raw item id, score), ...]`` best
        first.

        Args:
            user: A raw user id (user-item runs; and sequence data sets of
                next-item runs, whose users have a history).
            session: For next-item runs: the raw item ids of a session in
                time order, seen before or not (unknown ids raise
                :class:`UnknownIdError`).
            k: How many items.
            exclude_known: Leave out the user's known items (every part
                of the split) or the session's own items.
        """
        return self.recommend_many(
            users=None if user is None else [user],
            sessions=None if session is None else [session], k=k,
            exclude_known=exclude_known)[0]

    def recommend_many(self, users: list[Any] | None = None,
                       sessions: list[list[Any]] | None = None,
                       k: int = 10, exclude_known: bool = True
                       ) -> list[list[tuple[Any, float]]]:
        """:meth:`recommend` for several users or sessions at once (one
        scoring pass)."""
        if self.task == KG:
            raise UserError(
                f'{self.path} holds a knowledge-graph completion model '
                f'({self.args.model}): it has no users to recommend for; '
                f'export its entity table, or rank tails with '
                f'model.score_tails(head, relation)')
        k = self._check_k(k)
        if (users is None) == (sessions is None):
            raise UserError('give either users or sessions')
        if self.task == NEXT_ITEM:
            seqs = ([self._history(u) for u in users] if users is not None
                    else [self._session(s) for s in sessions])
            scores, items = self._recommend_sessions(seqs, k, exclude_known)
        else:
            if sessions is not None:
                raise UserError(
                    f'{self.args.model} recommends for users, not sessions; '
                    f'give a user id')
            rows = torch.tensor([self.index_of(USER, u) for u in users],
                                dtype=torch.long, device=self.device)
            exclude = self.known_items() if exclude_known else None
            if self.task == RATING:
                scores, items = self._rating_topk(rows, k, exclude)
            else:
                scores, items = self.model.recommend(rows, k,
                                                     exclude=exclude)
        out = []
        raw = self.ids[ITEM]
        for s_row, i_row in zip(scores.cpu().tolist(),
                                items.cpu().tolist()):
            out.append([(raw[i].item() if hasattr(raw[i], 'item')
                         else raw[i], float(s))
                        for s, i in zip(s_row, i_row) if i >= 0])
        return out

    def _history(self, user: Any) -> list[int]:
        """The items (internal ids) of a user's sequence."""
        seqs = getattr(self.data['ds'], 'sequences', None)
        if seqs is None or USER not in self.ids:
            raise UserError(
                f'{self.args.dataset} has sessions, not users; give the '
                f'session\'s item ids instead of a user')
        return list(seqs[self.index_of(USER, user)])

    def _session(self, session: Any) -> list[int]:
        """The internal ids of a session of raw item ids."""
        if isinstance(session, (str, bytes)) or \
                not hasattr(session, '__iter__'):
            raise UserError(f'a session is a list of item ids, got '
                            f'{session!r}')
        seq = [self.index_of(ITEM, i) for i in session]
        if not seq:
            raise UserError('a session needs at least one item id')
        return seq

    def _recommend_sessions(self, seqs: list[list[int]], k: int,
                            exclude_known: bool) -> tuple[Tensor, Tensor]:
        """Top-``k`` next items of sessions of internal item ids."""
        from pyg_recsys.data.session import SessionGraphs
        max_len = (self.args.max_len
                   or getattr(self.model, 'max_len', None))
        graphs = SessionGraphs(seqs, targets=[0] * len(seqs),
                               max_len=max_len, num_items=self.num_items)
        batch = graphs.collate(range(len(seqs)))
        exclude = None
        if exclude_known:  # all of each session, also beyond max_len
            rows = torch.cat([torch.full((len(q),), b, dtype=torch.long)
                              for b, q in enumerate(seqs)])
            cols = torch.tensor([i for q in seqs for i in q],
                                dtype=torch.long)
            exclude = CSR.from_pairs(rows, cols, len(seqs),
                                     self.num_items).to(self.device)
        with torch.no_grad():
            return self.model.recommend(batch, k, exclude=exclude)

    @torch.no_grad()
    def _rating_topk(self, rows: Tensor, k: int, exclude: CSR | None,
                     chunk: int = 65536) -> tuple[Tensor, Tensor]:
        """The items of highest predicted rating per user."""
        from pyg_recsys.ops.topk import chunked_topk
        items = torch.arange(self.num_items, device=self.device)

        def score_fn(users: Tensor) -> Tensor:
            users = users.to(self.device)
            out = [self.model.predict(users.repeat_interleave(part.numel()),
                                      part.repeat(users.numel())
                                      ).view(users.numel(), -1)
                   for part in items.split(max(1, chunk // users.numel()))]
            return torch.cat(out, dim=1)

        return chunked_topk(score_fn, rows, k, exclude, 64)

    # -- embeddings --------------------------------------------------------
    def tables(self) -> dict[str, Tensor]:
        """The model's embedding tables by node type (``'user'``,
        ``'item'``; ``'entity'`` and ``'relation'`` for knowledge-graph
        models), on the CPU: what :func:`~pyg_recsys.serving.export_run`
        writes and a retrieval index serves."""
        from pyg_recsys.cli.export import embedding_tables
        return embedding_tables(self.model)


def raw_ids(data: dict[str, Any]) -> dict[str, np.ndarray]:
    """Raw ids per node type of what a task driver loaded: the id maps of
    a user-item split, the entity and relation names of a
    knowledge-graph split, or the item (and user) ids of a session data
    set (``data['ds']``)."""
    split = data.get('split')
    if split is None:
        ds = data['ds']
        ids = {ITEM: np.asarray(ds.item_ids)}
        if getattr(ds, 'user_ids', None) is not None:
            ids[USER] = np.asarray(ds.user_ids)
        return ids
    if hasattr(split, 'entity_ids'):
        return {'entity': np.asarray(split.entity_ids),
                'relation': np.asarray(split.relation_names)}
    return {t: np.asarray(v) for t, v in split.ids.items()}


def _parse_args(config: dict[str, Any], run: Path) -> argparse.Namespace:
    from pyg_recsys.cli import parse_train_args
    args = parse_train_args(['--model', config['model'], '--dataset',
                             config['dataset'], '--out', str(run)])
    for key, value in config.items():
        if hasattr(args, key):
            setattr(args, key, value)
    return args


def _read_config(run: Path) -> dict[str, Any]:
    from pyg_recsys.cli.run import _read_config as read
    config_path = run / 'config.json'
    if run.exists() and not run.is_dir():
        raise UserError(f'--run {run} is not a folder; give the --out '
                        f'folder of a pyg-recsys train run')
    if not config_path.exists() or not (run / 'best.pt').exists():
        raise UserError(f'{run} has no config.json and best.pt; train a '
                        f'model there first (pyg-recsys train --out {run})')
    config = read(config_path)
    if config.get('model') not in MODELS or \
            config.get('dataset') not in DATASETS:
        raise DamagedFileError(
            f'{config_path}: names no model and data set of the table '
            f'({config.get("model")!r}, {config.get("dataset")!r}); '
            f'restore the file')
    return config


def _check_graph(run: Path, config: dict[str, Any], split: Any) -> None:
    """Refuses a ``split.pt`` that is not the graph of the weights."""
    saved = config.get('graph_fingerprint')
    if saved is None:
        log.warning('%s: the run predates graph fingerprints; the split '
                    'is checked by its sizes only', run)
        meta = config.get('split', {})
        for key in ('num_users', 'num_items', 'num_train', 'num_entities'):
            have = (getattr(split, key, None) if key != 'num_train'
                    else int(split.train.size(1)))
            if key in meta and have is not None and meta[key] != have:
                raise DamagedFileError(
                    f'{run / "split.pt"}: {key} {have} differs from the '
                    f'run\'s config ({meta[key]}); the split does not '
                    f'belong to these weights: retrain the run')
        return
    from pyg_recsys.data.split import graph_fingerprint
    have = graph_fingerprint(split)
    if have != saved:
        raise DamagedFileError(
            f'{run / "split.pt"}: its graph (fingerprint {have}) is not the '
            f'one the weights were trained on ({saved}); restore the '
            f'run\'s split.pt or retrain the run')


def load_run(path: str | Path, device: str | torch.device = 'cpu',
             root: str | None = None, raw_dir: str | None = None
             ) -> LoadedRun:
    """The trained model of a run folder, ready to recommend.

    Args:
        path: The ``--out`` folder of ``pyg-recsys train``.
        device: Where to put the model (``'cpu'``, ``'cuda'``,
            ``'cuda:1'`` ...).
        root: The data root, where it is not the run's (a moved run: the
            data of session runs and of runs whose split has no ids are
            read again).
        raw_dir: The folder of the raw files, where it is not the run's.

    Raises:
        UserError: Not a finished run.
        DamagedFileError: A damaged file, or a split whose graph is not
            the one the weights were trained on.
    """
    from pyg_recsys.cli.run import build_model, load_dataset
    run = Path(path).resolve()
    config = _read_config(run)
    args = _parse_args(config, run)
    if root is not None:
        args.root = str(Path(root).resolve())
    if raw_dir is not None:
        args.raw_dir = str(Path(raw_dir).resolve())
    spec = MODELS[args.model]
    task = spec.task
    try:
        device = torch.device(device)
    except RuntimeError as e:
        raise UserError(f'device {device!r}: {e}; use cpu, cuda or '
                        f'cuda:N') from None
    if device.type == 'cuda' and (
            not torch.cuda.is_available()
            or (device.index or 0) >= torch.cuda.device_count()):
        raise UserError(f'device {device}: CUDA is not available here '
                        f'({torch.cuda.device_count()} GPUs); use cpu')
    split = None
    if task == NEXT_ITEM:
        ds = load_dataset(args.dataset, args.root, args.raw_dir)
        key = config.get('source', {}).get('cache_key')
        from pyg_recsys.cli.run import _data_source
        if key is not None and _data_source(ds)['cache_key'] != key:
            raise DamagedFileError(
                f'{run}: the data set {args.dataset} at '
                f'{args.raw_dir or args.root} is not the one the run was '
                f'trained on (fingerprint differs); point the run at its '
                f'data (--raw-dir / --root, or load_run(raw_dir=, root=)) '
                f'or retrain it')
        data = dict(ds=ds, num_items=ds.num_items)
        ids = raw_ids(data)
        model = build_model(args, data)
    else:
        raw = safe_load(run / 'split.pt', 'split',
                        'retrain the run (the split and the weights belong '
                        'together)')
        if task == KG:
            from pyg_recsys.data.kg import KGSplit
            split = KGSplit.from_dict(raw)
            data = dict(split=split, num_items=split.num_entities)
            ids = raw_ids(data)
        else:
            from pyg_recsys.data.split import Split
            split = Split.from_dict(raw)
            if USER not in split.ids:  # a run made before splits kept ids
                ds = load_dataset(args.dataset, args.root, args.raw_dir)
                split.ids.update({USER: ds.interactions.user_ids,
                                  ITEM: ds.interactions.item_ids})
            data = dict(split=split, num_items=split.num_items)
            ids = raw_ids(data)
            if ITEM not in ids:
                raise DamagedFileError(f'{run / "split.pt"}: has no item '
                                       f'ids; retrain the run')
        _check_graph(run, config, split)
        model = build_model(args, data)
    state = safe_load(run / 'best.pt', 'best checkpoint', 'retrain the run')
    try:
        model.load_state_dict(state['model'])
    except (KeyError, RuntimeError, TypeError) as e:
        raise DamagedFileError(
            f'{run / "best.pt"}: the weights do not fit the {args.model} '
            f'built from the run\'s split and config '
            f'({str(e).splitlines()[0]}); retrain the run') from None
    try:
        model.to(device)
    except RuntimeError as e:
        raise UserError(f'device {device}: {str(e).splitlines()[0]}') \
            from None
    model.eval()
    return LoadedRun(path=run, model=model, task=task, config=config,
                     args=args, split=split, data=data, ids=ids,
                     device=device)


__all__ = ['LoadedRun', 'UnknownIdError', 'load_run', 'raw_ids']
