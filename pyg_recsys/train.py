"""The one training loop: fit, evaluate, early stop, checkpoint and resume.

:class:`Trainer` only talks to the model contract
(:mod:`pyg_recsys.nn.models.contract`): it calls ``model.loss(batch)`` on
whatever the training loader yields (or, for a model whose epoch alternates
objectives over several loaders, ``model.loss(batch, objective)``), and
hands the model to an *evaluator* (``evaluator(model, part) -> {metric:
value}``) for model selection on ``'val'`` and one final score on
``'test'``.  The same loop therefore trains pairwise user-item rankers
(:class:`RankingEvaluator`), rating regressors (:class:`RatingEvaluator`)
and next-item models over session batches (:class:`NextItemEvaluator`);
each evaluator checks the model against its task's contract.

Every epoch ends with an atomic checkpoint (model, optimizer, RNG states,
history, early-stopping state) in ``out_dir/last.pt``; the best model so far
is kept in ``out_dir/best.pt``.  Checkpoints hold tensors and plain values
only and are read with ``torch.load(..., weights_only=True)``, so a crafted
file cannot run code.  ``fit(resume=True)`` continues from ``last.pt`` and,
the loaders being reseeded per epoch, ends with exactly the result of an
uninterrupted run.
"""
from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from pyg_recsys.data.split import Split
from pyg_recsys.io import atomic_save, atomic_write_text, safe_load
from pyg_recsys.nn.models.contract import (
    MultiObjective,
    NextItemRecommender,
    PairwiseRanker,
    RatingPredictor,
    Recommender,
    check_contract,
)
from pyg_recsys.ops.csr import CSR

log = logging.getLogger(__name__)

DEFAULT_KS = (10, 20)
#: How a :class:`Trainer` with several loaders orders their batches.
SCHEDULES = ('sequential', 'interleave')
_DONE = object()


class Evaluator(Protocol):
    def __call__(self, model: nn.Module, part: str) -> dict[str, float]:
        ...


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and torch, and asks torch for deterministic
    kernels where it has them (CPU runs are then bit-reproducible)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _rng_state() -> dict[str, Any]:
    """The random states, as tensors and plain values (``weights_only``
    loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return dict(torch=torch.get_rng_state(),
                numpy=[kind, torch.from_numpy(keys.astype(np.int64)),
                       int(pos), int(has_gauss), float(gauss)],
                python=[version, list(internal), gauss_next])


def _set_rng_state(state: dict[str, Any]) -> None:
    """Restores :func:`_rng_state` (and the NumPy tuple of checkpoints
    written before the states were stored as tensors)."""
    torch.set_rng_state(state['torch'])
    kind, keys, pos, has_gauss, gauss = state['numpy']
    if isinstance(keys, Tensor):
        keys = keys.numpy()
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos,
                         has_gauss, gauss))
    version, internal, gauss_next = state['python']
    random.setstate((version, tuple(internal), gauss_next))


def _to_device(batch: Any, device: torch.device | str | None) -> Any:
    if device is None:
        return batch
    if isinstance(batch, Tensor) or hasattr(batch, 'to'):
        return batch.to(device)
    if isinstance(batch, tuple) and hasattr(batch, '_fields'):
        return type(batch)(*(_to_device(b, device) for b in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _batch_size(batch: Any) -> int:
    for attr in ('batch_size', 'num_graphs', 'user', 'y'):
        value = getattr(batch, attr, None)
        if isinstance(value, int):
            return value
        if isinstance(value, Tensor):
            return value.size(0)
    if isinstance(batch, Tensor):
        return batch.size(0)
    if isinstance(batch, (list, tuple)) and batch and isinstance(
            batch[0], Tensor):
        return batch[0].size(0)
    return 1


# Evaluators ##################################################################


class RankingEvaluator:
    """Full-ranking top-K evaluation of a user-item recommender.

    Ranks all items for every user with held-out items in ``part``, masking
    known positives (training items for ``'val'``, training and validation
    items for ``'test'``), through ``model.score(users)`` in user chunks.

    Args:
        split: The split whose parts are scored.
        ks: Cut-offs.
        metrics: Metric names (see :mod:`pyg_recsys.metrics`).
        batch_size: Users per chunk (results do not depend on it);
            ``None`` sizes chunks to about 4M scores, which keeps them in
            cache (:func:`pyg_recsys.ops.topk.auto_batch_size`).
    """

    def __init__(self, split: Split, ks: Iterable[int] = DEFAULT_KS,
                 metrics: Iterable[str] | None = None,
                 batch_size: int | None = None) -> None:
        self.split = split
        self.ks = tuple(ks)
        self.metrics = tuple(metrics) if metrics is not None else None
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, model: PairwiseRanker, part: str) -> dict[str, float]:
        from pyg_recsys.metrics import evaluate_ranking
        check_contract(model, PairwiseRanker, 'RankingEvaluator')
        model.eval()
        kwargs = {} if self.metrics is None else dict(metrics=self.metrics)
        return evaluate_ranking(model.score, self.split.targets(part),
                                self.split.exclude(part), ks=self.ks,
                                batch_size=self.batch_size, **kwargs)


class RatingEvaluator:
    """MAE / RMSE of ``model.predict(users, items)`` against held-out
    ratings (:class:`~pyg_recsys.nn.models.contract.RatingPredictor`).

    Args:
        parts: ``{part: (users, items, ratings)}`` tensors per part.
        batch_size: Pairs per forward call.
    """

    def __init__(self, parts: Mapping[str, tuple[Tensor, Tensor, Tensor]],
                 batch_size: int = 65536) -> None:
        self.parts = dict(parts)
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, model: RatingPredictor, part: str
                 ) -> dict[str, float]:
        from pyg_recsys.metrics import rating_metrics
        if part not in self.parts:
            raise KeyError(f"RatingEvaluator: no part '{part}'; have "
                           f'{sorted(self.parts)}')
        check_contract(model, RatingPredictor, 'RatingEvaluator')
        model.eval()
        users, items, target = self.parts[part]
        pred = torch.cat([
            model.predict(users[i:i + self.batch_size],
                          items[i:i + self.batch_size])
            for i in range(0, users.numel(), self.batch_size)
        ])
        return rating_metrics(pred, target)


class NextItemEvaluator:
    """Full-ranking next-item evaluation over batches of sequences/sessions.

    ``model.score(batch)`` returns ``[B, num_items]`` scores for the next
    item of each example and ``batch.y`` holds the target item
    (:class:`~pyg_recsys.nn.models.contract.NextItemRecommender`).  Nothing is
    masked, as in the session-recommendation protocol (SR-GNN) and RecBole's
    sequential evaluation: an item seen earlier in the session may be the
    next one.

    With ``num_negatives`` set, each example is also ranked against that
    many items drawn uniformly among those absent from its input sequence
    and target (SASRec's protocol, with replacement as its code), scored
    through ``model.score(batch, items)``; those metrics carry the prefix
    ``sampled{N}_`` (e.g. ``sampled100_hit@10``) so they are never mistaken
    for full-ranking figures.  The negatives depend only on ``seed`` and
    the order of the examples, so every evaluation of a part uses the same
    ones.

    Args:
        loaders: ``{part: iterable of batches}``.
        num_items: Number of items.
        ks: Cut-offs.
        num_negatives: Sampled negatives per example (``None``: full
            ranking only).
        seed: Seed of the sampled negatives.
    """

    def __init__(self, loaders: Mapping[str, Iterable[Any]], num_items: int,
                 ks: Iterable[int] = DEFAULT_KS,
                 num_negatives: int | None = None, seed: int = 0) -> None:
        self.loaders = dict(loaders)
        self.num_items = num_items
        self.ks = tuple(ks)
        if num_negatives is not None and not (
                0 < num_negatives < num_items):
            raise ValueError(f'NextItemEvaluator: num_negatives must be in '
                             f'[1, {num_items - 1}] (or None), got '
                             f'{num_negatives}')
        self.num_negatives = num_negatives
        self.seed = seed

    def sample_negatives(self, batch: Any, gen: torch.Generator) -> Tensor:
        """``[B, num_negatives]`` items, none in the example's input
        sequence or equal to its target."""
        from pyg_recsys.data.session import step_batch
        y = batch.y.view(-1)
        n, width = y.numel(), self.num_items
        rows = torch.cat([step_batch(batch), torch.arange(n)])
        seen = torch.unique(rows * width + torch.cat([batch.seq, y]))
        neg = torch.randint(width, (n, self.num_negatives), generator=gen)
        row_key = torch.arange(n).unsqueeze(1) * width
        while True:
            bad = torch.isin(row_key + neg, seen)
            if not bool(bad.any()):
                return neg
            neg[bad] = torch.randint(width, (int(bad.sum()),), generator=gen)

    @torch.no_grad()
    def __call__(self, model: NextItemRecommender, part: str
                 ) -> dict[str, float]:
        from pyg_recsys.metrics import RankingMetrics, sampled_rank_metrics
        from pyg_recsys.ops.topk import masked_topk
        check_contract(model, NextItemRecommender, 'NextItemEvaluator')
        model.eval()
        acc = RankingMetrics(ks=self.ks)
        gen = torch.Generator().manual_seed(self.seed)
        sampled: dict[str, float] = {}
        count = 0
        for batch in self.loaders[part]:
            scores = model.score(batch)
            y = batch.y.view(-1)
            rows = torch.arange(y.numel())
            if self.num_negatives is not None:
                neg = self.sample_negatives(batch, gen)
                cand = model.score(batch, torch.cat([y.view(-1, 1), neg], 1))
                for key, value in sampled_rank_metrics(
                        cand[:, 0], cand[:, 1:], self.ks).items():
                    sampled[key] = sampled.get(key, 0.0) + float(value.sum())
                count += y.numel()
            _, top = masked_topk(scores, max(self.ks), rows, None)
            acc.update(top, rows,
                       CSR.from_pairs(rows, y, y.numel(), self.num_items))
        out = acc.compute()
        prefix = f'sampled{self.num_negatives}_'
        out.update({prefix + k: v / max(count, 1)
                    for k, v in sampled.items()})
        return out


# The loop ####################################################################


class Trainer:
    """Trains a model through its ``loss(batch)`` and selects it on
    validation.

    One loader: every batch is a step on ``model.loss(batch)``
    (:class:`~pyg_recsys.nn.models.contract.Recommender`).  Several
    loaders, a mapping ``{objective: loader}``: the model alternates
    objectives within each epoch
    (:class:`~pyg_recsys.nn.models.contract.MultiObjective`, e.g. KGAT's
    BPR over interactions and TransR over triples), each batch a step on
    ``model.loss(batch, objective)``; ``schedule='sequential'`` runs every
    batch of the first loader, then of the next (KGAT's epoch),
    ``'interleave'`` takes one batch of each in turn until all are spent.
    Each objective may have its own optimizer; the epoch record holds the
    mean loss of each (``losses``) and their sum (``loss``).

    Args:
        model: A recommender following the model contract.
        train_loader: Iterable of training batches, or a mapping objective
            name -> iterable (in the order of the epoch).  A loader with
            ``set_epoch(epoch)`` has it called before each epoch (loaders
            that reseed per epoch make resumed runs exact).
        evaluator: ``evaluator(model, part) -> {metric: value}``.
        optimizer: Defaults to Adam with ``lr`` over the model's parameters;
            with several loaders also a mapping objective -> optimizer.
        schedule: ``'sequential'`` or ``'interleave'`` (several loaders).
        lr: Learning rate of the default optimizer.
        epochs: Maximum number of epochs.
        eval_every: Validate every this many epochs (and after the last).
        monitor: Validation metric for model selection, e.g. ``'ndcg@20'``.
        mode: ``'max'`` or ``'min'`` for ``monitor``.
        patience: Stop after this many validations without improvement
            (``None``: never stop early).
        out_dir: Folder for ``last.pt``, ``best.pt`` and ``metrics.json``;
            ``None`` keeps everything in memory (no resume).
        progress: Show a tqdm bar per epoch.
        device: Device batches are moved to (the model is not moved).
        grad_clip: Optional max gradient norm.
        on_epoch_end: Optional callback ``f(trainer, record)`` after each
            epoch's checkpoint was written.
        lr_step: Step decay of the learning rate (SR-GNN's ``StepLR``):
            epoch :math:`e` (from 1) runs at
            ``lr * lr_gamma ** ((e - 1) // lr_step)``, computed from the
            epoch number so resumed runs follow the same schedule.
            ``None``: constant.
        lr_gamma: Factor of each decay step.
    """

    def __init__(self, model: nn.Module,
                 train_loader: Iterable[Any] | Mapping[str, Iterable[Any]],
                 evaluator: Evaluator, *,
                 optimizer: torch.optim.Optimizer
                 | Mapping[str, torch.optim.Optimizer] | None = None,
                 schedule: str = 'sequential',
                 lr: float = 1e-3, epochs: int = 100, eval_every: int = 1,
                 monitor: str = 'ndcg@20', mode: str = 'max',
                 patience: int | None = None,
                 out_dir: str | Path | None = None, progress: bool = True,
                 device: torch.device | str | None = None,
                 grad_clip: float | None = None,
                 on_epoch_end: Callable[[Trainer, dict], None] | None = None,
                 lr_step: int | None = None, lr_gamma: float = 0.1,
                 ) -> None:
        if mode not in ('max', 'min'):
            raise ValueError(f"Trainer: mode must be 'max' or 'min', got "
                             f"'{mode}'")
        if epochs < 1 or eval_every < 1:
            raise ValueError(f'Trainer: epochs and eval_every must be >= 1, '
                             f'got epochs={epochs}, eval_every={eval_every}')
        if schedule not in SCHEDULES:
            raise ValueError(f'Trainer: schedule must be one of '
                             f'{SCHEDULES}, got {schedule!r}')
        self.model = model
        self.loaders = self._objectives(model, train_loader)
        self.schedule = schedule
        self.evaluator = evaluator
        self.optimizer = optimizer or torch.optim.Adam(model.parameters(),
                                                       lr=lr)
        if isinstance(self.optimizer, Mapping):
            unknown = set(self.optimizer) - set(self.loaders)
            missing = set(self.loaders) - set(self.optimizer)
            if self.loaders.keys() == {None} or unknown or missing:
                raise ValueError(
                    f'Trainer: a mapping of optimizers needs one per '
                    f'objective {sorted(k for k in self.loaders if k)}, got '
                    f'{sorted(self.optimizer)}')
        self.epochs = epochs
        self.eval_every = eval_every
        self.monitor = monitor
        self.mode = mode
        self.patience = patience
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = progress
        self.device = device
        self.grad_clip = grad_clip
        self.on_epoch_end = on_epoch_end
        if lr_step is not None and lr_step < 1:
            raise ValueError(f'Trainer: lr_step must be >= 1 (or None), got '
                             f'{lr_step}')
        self.lr_step = lr_step
        self.lr_gamma = lr_gamma
        self.last_losses: dict[str | None, float] = {}
        self._reset_state()

    @staticmethod
    def _objectives(model: nn.Module, loader: Any
                    ) -> dict[str | None, Iterable[Any]]:
        """``{objective: loader}``; ``{None: loader}`` for one loader."""
        if not isinstance(loader, Mapping):
            check_contract(model, Recommender, 'Trainer')
            return {None: loader}
        if not loader:
            raise ValueError('Trainer: the mapping of loaders is empty')
        check_contract(model, MultiObjective, 'Trainer')
        unknown = [k for k in loader if k not in model.objectives]
        if unknown:
            raise ValueError(f'Trainer: loaders {unknown} name no objective '
                             f'of {type(model).__name__} (its objectives: '
                             f'{list(model.objectives)})')
        return dict(loader)

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        opt = self.optimizer
        return list(opt.values()) if isinstance(opt, Mapping) else [opt]

    def _reset_state(self) -> None:
        self.history: list[dict[str, Any]] = []
        self.epoch = 0
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self.best_val: dict[str, float] | None = None
        self.best_state: dict[str, Tensor] | None = None
        self.bad_evals = 0
        self.stopped_early = False
        self.test: dict[str, float] | None = None

    # checkpoint ##############################################################

    @property
    def last_path(self) -> Path | None:
        return self.out_dir / 'last.pt' if self.out_dir else None

    @property
    def best_path(self) -> Path | None:
        return self.out_dir / 'best.pt' if self.out_dir else None

    def state_dict(self) -> dict[str, Any]:
        opt = self.optimizer
        return dict(model=self.model.state_dict(),
                    optimizer=({k: o.state_dict() for k, o in opt.items()}
                               if isinstance(opt, Mapping)
                               else opt.state_dict()), epoch=self.epoch,
                    history=self.history, best_epoch=self.best_epoch,
                    best_value=self.best_value, best_val=self.best_val,
                    bad_evals=self.bad_evals,
                    stopped_early=self.stopped_early, test=self.test,
                    rng=_rng_state())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state['model'])
        if isinstance(self.optimizer, Mapping):
            for k, o in self.optimizer.items():
                o.load_state_dict(state['optimizer'][k])
        else:
            self.optimizer.load_state_dict(state['optimizer'])
        self.epoch = state['epoch']
        self.history = state['history']
        self.best_epoch = state['best_epoch']
        self.best_value = state['best_value']
        self.best_val = state['best_val']
        self.bad_evals = state['bad_evals']
        self.stopped_early = state['stopped_early']
        self.test = state['test']
        _set_rng_state(state['rng'])

    def _checkpoint(self, model_state: dict[str, Tensor] | None = None
                    ) -> None:
        if self.out_dir is None:
            return
        state = self.state_dict()
        if model_state is not None:
            state['model'] = model_state
        atomic_save(state, self.last_path)
        atomic_write_text(json.dumps(self.result(), indent=2),
                          self.out_dir / 'metrics.json')

    # loop ####################################################################

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best_value is None:
            return True
        if self.mode == 'max':
            return value > self.best_value
        return value < self.best_value

    def _set_lr(self) -> None:
        if self.lr_step is None:
            return
        factor = self.lr_gamma ** ((self.epoch - 1) // self.lr_step)
        for opt in self.optimizers:
            for group in opt.param_groups:
                group['lr'] = group.setdefault('initial_lr',
                                               group['lr']) * factor

    def _batches(self) -> Iterator[tuple[str | None, Any]]:
        """``(objective, batch)`` pairs of one epoch, in schedule order."""
        if self.schedule == 'sequential' or len(self.loaders) == 1:
            for name, loader in self.loaders.items():
                for batch in loader:
                    yield name, batch
            return
        iters = {name: iter(loader) for name, loader in self.loaders.items()}
        while iters:
            for name in list(iters):
                batch = next(iters[name], _DONE)
                if batch is _DONE:
                    del iters[name]
                else:
                    yield name, batch

    def _num_batches(self) -> int | None:
        try:
            return sum(len(loader) for loader in self.loaders.values())
        except TypeError:
            return None

    def train_epoch(self) -> float:
        """One pass over the training loader(s); returns the mean loss (the
        sum of the objectives' means, each in :attr:`last_losses`)."""
        self.model.train()
        for loader in self.loaders.values():
            if hasattr(loader, 'set_epoch'):
                loader.set_epoch(self.epoch)
        total: dict[str | None, float] = dict.fromkeys(self.loaders, 0.0)
        count: dict[str | None, int] = dict.fromkeys(self.loaders, 0)
        bar = tqdm(self._batches(), desc=f'epoch {self.epoch}',
                   total=self._num_batches(), disable=not self.progress,
                   leave=False, dynamic_ncols=True)
        for name, batch in bar:
            batch = _to_device(batch, self.device)
            opt = (self.optimizer[name] if isinstance(self.optimizer,
                                                      Mapping)
                   else self.optimizer)
            opt.zero_grad(set_to_none=True)
            loss = (self.model.loss(batch) if name is None
                    else self.model.loss(batch, name))
            if not torch.isfinite(loss):
                what = '' if name is None else f' ({name})'
                raise FloatingPointError(
                    f'Trainer: loss{what} became {loss.item()} at epoch '
                    f'{self.epoch}; lower the learning rate or check the '
                    f'inputs')
            loss.backward()
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(),
                                         self.grad_clip)
            opt.step()
            n = _batch_size(batch)
            total[name] += float(loss.detach()) * n
            count[name] += n
            bar.set_postfix(loss=f'{total[name] / max(count[name], 1):.4f}')
        self.last_losses = {name: total[name] / max(count[name], 1)
                            for name in self.loaders}
        return sum(self.last_losses.values())

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Trains, validates, early-stops and scores the test part once at
        the best checkpoint.  Returns :meth:`result`.

        Args:
            resume: Continue from ``out_dir/last.pt`` if it exists.  A
                finished run is returned as it is, or, when ``epochs`` is
                now larger (and it did not stop early), trained on from its
                last epoch's weights, optimizer and random state; the old
                last epoch keeps the validation it got as the run's end, so
                with ``eval_every=1`` the result equals an uninterrupted
                longer run (tested).
        """
        if resume:
            if self.out_dir is None:
                raise ValueError('Trainer.fit: resume=True needs out_dir')
            if self.last_path.exists():
                self.load_state_dict(safe_load(
                    self.last_path, 'checkpoint',
                    'delete it to start the run afresh, or restore it'))
                log.info('resumed from %s at epoch %d', self.last_path,
                         self.epoch)
                if self.test is not None:  # the run had already finished
                    if self.epoch < self.epochs and not self.stopped_early:
                        # more epochs asked for: go on from the last one
                        log.info('extending the finished run from %d to %d '
                                 'epochs', self.epoch, self.epochs)
                        self.test = None
                    else:
                        self._load_best()
                        self._restore_best()
                        return self.result()
        else:
            self._reset_state()
        self._load_best()

        while self.epoch < self.epochs and not self.stopped_early:
            self.epoch += 1
            self._set_lr()
            t0 = time.perf_counter()
            loss = self.train_epoch()
            record: dict[str, Any] = dict(
                epoch=self.epoch, loss=loss,
                train_seconds=time.perf_counter() - t0)
            if None not in self.last_losses:
                record['losses'] = dict(self.last_losses)
            if self.epoch % self.eval_every == 0 or self.epoch == self.epochs:
                t0 = time.perf_counter()
                val = self.evaluator(self.model, 'val')
                record['eval_seconds'] = time.perf_counter() - t0
                record['val'] = val
                if self.monitor not in val:
                    raise KeyError(
                        f"Trainer: monitor '{self.monitor}' is not among the "
                        f'validation metrics {sorted(val)}; pass one of them')
                if self._improved(val[self.monitor]):
                    self.best_value = val[self.monitor]
                    self.best_val = val
                    self.best_epoch = self.epoch
                    self.bad_evals = 0
                    self._save_best()
                else:
                    self.bad_evals += 1
                    if (self.patience is not None
                            and self.bad_evals >= self.patience):
                        self.stopped_early = True
                log.info('epoch %d loss %.4f %s %.4f (best %.4f @ %s)',
                         self.epoch, loss, self.monitor, val[self.monitor],
                         self.best_value, self.best_epoch)
            self.history.append(record)
            self._checkpoint()
            if self.on_epoch_end is not None:
                self.on_epoch_end(self, record)

        # last.pt keeps the last epoch's weights (so a finished run can be
        # extended exactly); the model in memory goes to the best epoch.
        last = {k: v.detach().clone()
                for k, v in self.model.state_dict().items()}
        self._restore_best()
        t0 = time.perf_counter()
        self.test = self.evaluator(self.model, 'test')
        self.test_seconds = time.perf_counter() - t0
        self._checkpoint(model_state=last)
        return self.result()

    def _load_best(self) -> None:
        if self.best_epoch is not None and self.best_path is not None:
            self.best_state = safe_load(
                self.best_path, 'best checkpoint',
                'delete the run folder to start afresh, or restore it'
            )['model']

    def _save_best(self) -> None:
        state = {k: v.detach().clone()
                 for k, v in self.model.state_dict().items()}
        self.best_state = state
        if self.best_path is not None:
            atomic_save(dict(model=state, epoch=self.epoch,
                             val=self.best_val), self.best_path)

    def _restore_best(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)

    def result(self) -> dict[str, Any]:
        """The ``metrics.json`` record: per-epoch history, best epoch, its
        validation metrics and the test metrics (once scored)."""
        return dict(epochs=self.history, best_epoch=self.best_epoch,
                    monitor=self.monitor, best_val=self.best_val,
                    stopped_early=self.stopped_early, test=self.test)
