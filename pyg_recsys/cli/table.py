"""The command line's name tables: the package's only string registry of
models and data sets.

A model's entry names its class, its task kind and which command-line
options it takes (and as which constructor argument); adding a model is
its own file in :mod:`pyg_recsys.nn.models` plus one entry here.  A data
set's entry names its class, constructor arguments and the task kinds it
serves.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Task kinds (one training driver each, :mod:`pyg_recsys.cli.tasks`).
RANKING = 'ranking'
NEXT_ITEM = 'next-item'
RATING = 'rating'
KG = 'kg-completion'
CLICK = 'click-through'


@dataclass(frozen=True)
class Opt:
    """A command-line option a model takes: ``dest`` (the option's
    argparse name) becomes the constructor argument ``arg`` (default: the
    same name), through ``convert`` where given.  An option left unset is
    not passed, so the model's own default applies."""

    dest: str
    arg: str | None = None
    convert: Callable[[Any], Any] | None = None

    def kwarg(self, value: Any) -> tuple[str, Any]:
        return (self.arg or self.dest,
                self.convert(value) if self.convert else value)


@dataclass(frozen=True)
class ModelSpec:
    """A model of the name table.

    Attributes:
        cls: Class name in :mod:`pyg_recsys.nn.models`.
        task: Task kind (:data:`RANKING`, :data:`NEXT_ITEM`).
        options: The model's own options.
        graph: Takes the training graph (``edge_index``).
        features: Takes the data set's node features (``user_x``,
            ``item_x``) unless ``--no-features``.
        minibatch: Trains on sampled subgraphs with ``--minibatch``.
        typed_graph: Takes a typed training graph, so
            ``--side-relations`` can hand it the split's side relations
            (knowledge graph, trust) next to the interactions.
        kg: Needs the whole typed training graph (``graph=``, a
            knowledge graph next to the interactions) always.
        not_taken: Options of its task kind the model does not take
            (TwHIN draws its own negatives).
        negatives: The ``--neg`` samplers it takes (``None``: all of its
            task kind's).
        defaults: Its own defaults of run options (before the task
            kind's).
        workers: Builds its batches in worker processes (``--workers``).
    """

    cls: str
    task: str
    options: tuple[Opt, ...] = ()
    graph: bool = False
    features: bool = False
    minibatch: bool = False
    typed_graph: bool = False
    kg: bool = False
    not_taken: frozenset[str] = frozenset()
    negatives: tuple[str, ...] | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    workers: bool = False

    def model_class(self) -> type:
        return getattr(importlib.import_module('pyg_recsys.nn.models'),
                       self.cls)

    @property
    def dests(self) -> tuple[str, ...]:
        return tuple(o.dest for o in self.options)


_DIM = Opt('dim', 'embedding_dim')
_LAYERS = Opt('layers', 'num_layers')
# every pairwise recommender: size, L2 weight and the pair objective
_CF = (_DIM, Opt('reg', 'reg_weight'), Opt('pair_loss'), Opt('temperature'))
_LOSS = Opt('loss')

MODELS: dict[str, ModelSpec] = {
    'mf': ModelSpec('MF', RANKING, _CF),
    'lightgcn': ModelSpec('LightGCN', RANKING, (*_CF, _LAYERS), graph=True,
                          typed_graph=True),
    'ngcf': ModelSpec('NGCF', RANKING, (
        *_CF, _LAYERS, Opt('dim', 'hidden_channels'),
        Opt('dropout', 'message_dropout'), Opt('node_dropout')), graph=True,
        typed_graph=True),
    'simgcl': ModelSpec('SimGCL', RANKING, (
        *_CF, _LAYERS, Opt('cl_weight'), Opt('eps'), Opt('cl_temperature')),
        graph=True, typed_graph=True),
    'sage': ModelSpec('SAGERecommender', RANKING, (
        *_CF, _LAYERS, Opt('dropout')), graph=True, features=True,
        minibatch=True),
    'gat': ModelSpec('GATRecommender', RANKING, (
        *_CF, _LAYERS, Opt('dropout'), Opt('heads')), graph=True,
        features=True, minibatch=True),
    'srgnn': ModelSpec('SRGNN', NEXT_ITEM, (
        _DIM, Opt('steps', 'num_steps'), _LOSS, Opt('bpr_max_reg'))),
    'tagnn': ModelSpec('TAGNN', NEXT_ITEM, (
        _DIM, Opt('steps', 'num_steps'), _LOSS)),
    'gru4rec': ModelSpec('GRU4Rec', NEXT_ITEM, (
        _DIM, Opt('hidden', 'hidden_size'), Opt('rnn_layers', 'num_layers'),
        Opt('dropout'), _LOSS, Opt('bpr_max_reg'))),
    'kgat': ModelSpec('KGAT', RANKING, (
        _DIM, Opt('reg', 'reg_weight'), Opt('dropout'), Opt('aggregator'),
        Opt('kgat_dims', 'layer_dims', convert=tuple),
        Opt('attention', convert=bool)), kg=True),
    'twhin': ModelSpec('TwHIN', RANKING, (_DIM,), kg=True,
                       not_taken=frozenset({
                           'neg', 'num_neg', 'pair_loss', 'temperature',
                           'hard_ranks', 'ppr_walks', 'max_hard',
                           'kg_batch_size'})),
    'kgcn': ModelSpec('KGCN', CLICK, (
        _DIM, _LAYERS, Opt('reg', 'reg_weight'),
        Opt('kg_neighbors', 'num_neighbors'), Opt('aggregator'),
        Opt('resample'), Opt('seed'))),
    'transe': ModelSpec('TransE', KG, (
        _DIM, Opt('kg_loss', 'loss'), Opt('margin'), Opt('p_norm'),
        Opt('reciprocal'), Opt('normalize_entities', 'normalize'),
        Opt('reg', 'reg_weight'), Opt('dropout'))),
    'biasedmf': ModelSpec('BiasedMF', RATING, (
        _DIM, Opt('reg', 'reg_weight'))),
    'graphrec': ModelSpec('GraphRec', RATING, (
        _DIM, Opt('dropout'), Opt('neighbors', 'num_neighbors'),
        Opt('social'), Opt('seed')), graph=True),
    'pinsage': ModelSpec('PinSage', RANKING, (
        _DIM, _LAYERS, Opt('dropout'), Opt('margin'),
        Opt('neighbors', 'num_neighbors', convert=lambda v: v[0]),
        Opt('walks', 'num_walks'), Opt('restart_prob'), Opt('seed')),
        graph=True, features=True,
        not_taken=frozenset({'reg', 'pair_loss', 'temperature'}),
        negatives=('uniform', 'curriculum'),
        defaults=dict(layers=2, num_neg=500, batch_size=512), workers=True),
    'sasrec': ModelSpec('SASRec', NEXT_ITEM, (
        _DIM, Opt('blocks', 'num_blocks'), Opt('heads', 'num_heads'),
        Opt('dropout'), Opt('max_len', convert=lambda v: v or 50), _LOSS,
        Opt('post_norm', 'norm_first', convert=lambda v: not v))),
}


@dataclass(frozen=True)
class DatasetSpec:
    """A data set of the name table: its class (in
    :mod:`pyg_recsys.datasets`), constructor arguments and task kinds."""

    cls: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    tasks: tuple[str, ...] = (RANKING,)

    def dataset_class(self) -> type:
        return getattr(importlib.import_module('pyg_recsys.datasets'),
                       self.cls)


def _datasets() -> dict[str, DatasetSpec]:
    from pyg_recsys.datasets import (
        KGCompletionDataset,
        LightGCNDataset,
        SequenceDataset,
        SocialDataset,
        SRGNNSessions,
    )
    table = {'movielens-100k': DatasetSpec('MovieLens100K'),
             'movielens-100k-kg': DatasetSpec('MovieLens100KKG',
                                              tasks=(RANKING, CLICK)),
             'lastfm-kg': DatasetSpec('LastFMKG', tasks=(RANKING, CLICK))}
    for name in LightGCNDataset.names:
        table[name] = DatasetSpec('LightGCNDataset', dict(name=name))
    for name in SocialDataset.names:
        table[name] = DatasetSpec('SocialDataset', dict(name=name),
                                  (RANKING, RATING))
    for name in SRGNNSessions.names:
        table[name] = DatasetSpec('SRGNNSessions', dict(name=name),
                                  (NEXT_ITEM,))
    for name in SequenceDataset.names:
        table[name] = DatasetSpec('SequenceDataset', dict(name=name),
                                  (NEXT_ITEM,))
    for name in KGCompletionDataset.names:
        table[name] = DatasetSpec('KGCompletionDataset', dict(name=name),
                                  (KG,))
    return table


DATASETS: dict[str, DatasetSpec] = _datasets()


def models_of(task: str) -> list[str]:
    """Names of the table's models of one task kind."""
    return [name for name, spec in MODELS.items() if spec.task == task]


def datasets_of(task: str) -> list[str]:
    """Names of the table's data sets that serve one task kind."""
    return [name for name, spec in DATASETS.items() if task in spec.tasks]


__all__ = ['RANKING', 'NEXT_ITEM', 'RATING', 'KG', 'CLICK', 'Opt', 'ModelSpec',
           'DatasetSpec', 'MODELS', 'DATASETS', 'models_of', 'datasets_of']
