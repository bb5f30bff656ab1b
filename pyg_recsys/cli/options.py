"""The options of the ``pyg-recsys`` command and its parser."""
from __future__ import annotations

import argparse
from typing import Any

from pyg_recsys.cli.table import DATASETS, MODELS

# Defaults of the options declared with default=None, filled in after
# parsing: an option left at None was not given, so it can be told apart
# from one given with its default value (options a model does not take are
# an error only when given).
DEFAULTS: dict[str, Any] = dict(
    epochs=100, lr=1e-3, dim=64, layers=3, reg=1e-4, heads=2,
    node_dropout=0.0, cl_weight=0.2, eps=0.1, cl_temperature=0.2,
    neg='uniform', num_neg=1, pair_loss='bpr', temperature=1.0,
    hard_ranks=[10, 100], ppr_walks=1000, max_hard=4, loss='ce',
    bpr_max_reg=1.0, train_mode='auto', steps=1, hidden=128, rnn_layers=1,
    blocks=2, weight_decay=0.0, lr_gamma=0.1, eval_every=1, ks=[10, 20],
    seed=0)

NEGATIVES = ('uniform', 'popularity', 'shared', 'inbatch', 'ppr',
             'curriculum')


def _add_train(sub: Any) -> None:
    t = sub.add_parser('train', help='train and evaluate a recommender')
    t.add_argument('--model', required=True, choices=list(MODELS))
    t.add_argument('--dataset', required=True, choices=list(DATASETS))
    t.add_argument('--raw-dir', default=None,
                   help='folder with the upstream raw files as they come')
    t.add_argument('--root', default=None,
                   help='writable data root for processed files '
                   '(default: $PYG_RECSYS_ROOT or ./datasets)')
    t.add_argument('--split', dest='split_kind', default=None,
                   help='ranking models: split kind (default: the '
                   'dataset\'s own)')
    t.add_argument('--split-file', default=None, metavar='PATH',
                   help='ranking models: train / validate / test on the '
                   'parts written in PATH (user<TAB>item<TAB>part lines, '
                   'raw ids; e.g. another library\'s split)')
    t.add_argument('--split-ratios', type=float, nargs=3, default=None,
                   metavar=('TRAIN', 'VAL', 'TEST'),
                   help='ranking models, --split random/temporal: the ratios '
                   '(e.g. 0.6 0.2 0.2)')
    t.add_argument('--epochs', type=int, default=None, help='default 100')
    t.add_argument('--lr', type=float, default=None, help='default 1e-3')
    t.add_argument('--weight-decay', type=float, default=None,
                   help='Adam weight decay (default 0; SR-GNN: 1e-5)')
    t.add_argument('--lr-step', type=int, default=None,
                   help='decay the learning rate every N epochs (SR-GNN: '
                   '3)')
    t.add_argument('--lr-gamma', type=float, default=None,
                   help='--lr-step: decay factor (default 0.1)')
    t.add_argument('--batch-size', type=int, default=None,
                   help='training batch (default 2048 pairs; session '
                   'models: 256 examples)')
    m = t.add_argument_group('model options (each applies to the models '
                             'named)')
    m.add_argument('--dim', type=int, default=None,
                   help='embedding size (default 64)')
    m.add_argument('--layers', type=int, default=None,
                   help='lightgcn/ngcf/simgcl/sage/gat: layers (default 3); '
                   'kgcn: hops H (default 1); pinsage: convolutions (2)')
    m.add_argument('--reg', type=float, default=None,
                   help='pairwise models: L2 weight (default 1e-4)')
    m.add_argument('--dropout', type=float, default=None,
                   help='ngcf: message dropout (default 0.1); sage/gat: '
                   'between layers (default 0); gru4rec (0.3), sasrec '
                   '(0.5); kgat: message dropout (0.1); transe: entity '
                   'dropout in training (0)')
    m.add_argument('--node-dropout', type=float, default=None,
                   help='ngcf: share of user-item edges dropped per step')
    m.add_argument('--heads', type=int, default=None,
                   help='gat/sasrec: attention heads (default 2)')
    m.add_argument('--cl-weight', type=float, default=None,
                   help='simgcl: weight of the contrastive loss (lambda, '
                   'default 0.2)')
    m.add_argument('--eps', type=float, default=None,
                   help='simgcl: norm of the noise added per layer (0.1)')
    m.add_argument('--cl-temperature', type=float, default=None,
                   help='simgcl: InfoNCE temperature (tau, default 0.2)')
    m.add_argument('--side-relations', dest='side', action='store_true',
                   help='lightgcn/ngcf/simgcl: propagate over the split\'s '
                   'whole training graph, side relations (knowledge graph, '
                   'trust) included, not the interactions alone')
    m.add_argument('--no-features', dest='features', action='store_false',
                   help='sage/gat: ignore the dataset\'s user/item '
                   'features (MovieLens-100K has them)')
    r = t.add_argument_group('pairwise ranking (mf, lightgcn, ngcf, simgcl, '
                             'sage, gat, pinsage)')
    r.add_argument('--minibatch', action='store_true',
                   help='sage/gat: train on sampled subgraphs '
                   '(LinkNeighborLoader) instead of the full graph')
    r.add_argument('--neighbors', type=int, nargs='+', default=None,
                   help='--minibatch: neighbours sampled per layer '
                   '(default 10 each); graphrec: rated items per user, '
                   'social neighbours per user, raters per item (default '
                   '20 10 20); pinsage: one count, the neighbours per '
                   'item (default 10)')
    r.add_argument('--walks', type=int, default=None,
                   help='pinsage: random walks per item for its importance '
                   'neighbourhood (default 50)')
    r.add_argument('--restart-prob', type=float, default=None,
                   help='pinsage: probability that a walk stops on an item '
                   '(default 0.5)')
    r.add_argument('--workers', type=int, default=None,
                   help='pinsage: worker processes that build the next '
                   'batches (walks) while the model trains (default 0)')
    r.add_argument('--no-social', dest='social', action='store_const',
                   const=False, default=None,
                   help='graphrec: leave out the social aggregation '
                   '(GraphRec-SN)')
    r.add_argument('--neg', choices=NEGATIVES, default=None,
                   help='negative sampler: uniform (default) or popularity '
                   '(exact, known positives excluded), shared (one set per '
                   'batch scored by every user), inbatch (the batch\'s '
                   'other positives), ppr (personalized-PageRank hard '
                   'negatives), curriculum (uniform + epoch-1 ppr ones); '
                   'transe: shared (default), uniform (per triple) or '
                   'inbatch; pinsage: uniform (--num-neg shared by each '
                   'batch) or curriculum (plus epoch-1 item-PPR ones)')
    r.add_argument('--num-neg', type=int, default=None,
                   help='negatives per pair (shared: per batch; default 1; '
                   'transe: heads and tails per triple or, with the '
                   'default --neg shared, per batch: 256; pinsage: per '
                   'batch, 500)')
    r.add_argument('--pair-loss', choices=('bpr', 'softmax'), default=None,
                   help='pairwise objective (default bpr; softmax: sampled '
                   'softmax cross-entropy over the negatives)')
    r.add_argument('--temperature', type=float, default=None,
                   help='softmax temperature of --pair-loss softmax (1.0)')
    r.add_argument('--hard-ranks', type=int, nargs=2, default=None,
                   metavar=('LO', 'HI'),
                   help='ppr/curriculum: rank window of hard candidates '
                   '(default 10 100)')
    r.add_argument('--ppr-walks', type=int, default=None,
                   help='ppr/curriculum: random walks per user (1000)')
    r.add_argument('--max-hard', type=int, default=None,
                   help='curriculum: most hard negatives per pair (4)')
    s = t.add_argument_group('session / sequence models (srgnn, tagnn, '
                             'gru4rec, sasrec)')
    s.add_argument('--max-len', type=int, default=None,
                   help='keep the last N steps of every example (default '
                   '50; 0: no limit, except sasrec\'s 50 positions)')
    s.add_argument('--loss', choices=('ce', 'bce', 'bpr-max'), default=None,
                   help='ce (default): softmax over all items; bce: one '
                   'sampled negative (SASRec paper); bpr-max: in-batch '
                   'negatives (GRU4Rec)')
    s.add_argument('--bpr-max-reg', type=float, default=None,
                   help='srgnn/gru4rec bpr-max: score regularisation (1.0)')
    s.add_argument('--train-mode', choices=('auto', 'prefix', 'sequence'),
                   default=None,
                   help='prefix: one example per prefix; sequence: one '
                   'per user sequence with a target at every step (causal '
                   'models; auto, the default, picks it for gru4rec/sasrec '
                   'on per-user data)')
    s.add_argument('--bucket', type=int, default=None,
                   help='sort each pool of N shuffled batches by length '
                   'before batching, so padded models skip most padding '
                   '(default 20; 0: off)')
    s.add_argument('--steps', type=int, default=None,
                   help='srgnn/tagnn: gated graph steps (default 1)')
    s.add_argument('--hidden', type=int, default=None,
                   help='gru4rec: GRU hidden size (default 128)')
    s.add_argument('--rnn-layers', type=int, default=None,
                   help='gru4rec: GRU layers (default 1)')
    s.add_argument('--blocks', type=int, default=None,
                   help='sasrec: self-attention blocks (default 2; heads: '
                   '--heads)')
    s.add_argument('--post-norm', action='store_true',
                   help='sasrec: post-norm blocks and normalised input '
                   'embeddings (BERT / RecBole layout) instead of the '
                   'paper\'s pre-norm')
    s.add_argument('--sampled-negatives', type=int, default=None,
                   metavar='N',
                   help='also report the target ranked among N sampled '
                   'items (SASRec: 100), labelled sampledN_*')
    g = t.add_argument_group('knowledge graph attention (kgat)')
    g.add_argument('--kgat-dims', type=int, nargs='+', default=None,
                   help='kgat: output sizes of the layers (default 64 32 '
                   '16)')
    g.add_argument('--no-attention', dest='attention',
                   action='store_false',
                   help='kgat: keep the initial normalised edge weights '
                   '(ablation)')
    g.add_argument('--kg-batch-size', type=int, default=None,
                   help='kgat: triples per batch of the TransR objective '
                   '(default 2048)')
    c = t.add_argument_group('click-through with a knowledge graph (kgcn)')
    c.add_argument('--kg-neighbors', type=int, default=None,
                   help='kgcn: neighbours sampled per entity and hop (K, '
                   'default 8)')
    c.add_argument('--aggregator', default=None,
                   choices=('sum', 'concat', 'neighbor', 'bi-interaction',
                            'gcn', 'graphsage'),
                   help='kgcn: sum (default), concat or neighbor; kgat: '
                   'bi-interaction (default), gcn or graphsage')
    c.add_argument('--resample', action='store_true',
                   help='kgcn: draw the receptive field anew every epoch '
                   '(default: once, as the reference)')
    k = t.add_argument_group('knowledge-graph completion (transe)')
    k.add_argument('--kg-loss', choices=('ce', 'margin'), default=None,
                   help='ce (default): softmax cross-entropy of the true '
                   'entity against the negatives; margin: the margin '
                   'ranking loss of the TransE paper')
    k.add_argument('--margin', type=float, default=None,
                   help='--kg-loss margin, pinsage: the margin (default '
                   '1.0)')
    k.add_argument('--p-norm', type=int, choices=(1, 2), default=None,
                   help='transe: the distance\'s norm (default 2)')
    k.add_argument('--reciprocal', action='store_true',
                   help='transe: learn inverse relations and predict '
                   'heads as tails of (t, r^-1, ?)')
    k.add_argument('--normalize-entities', action='store_true',
                   help='transe: entity embeddings on the unit sphere '
                   '(the paper\'s constraint, as PyG\'s TransE)')
    e = t.add_argument_group('evaluation and the run')
    e.add_argument('--eval-every', type=int, default=None,
                   help='validate every N epochs (default 1)')
    e.add_argument('--eval-batch-size', type=int, default=None,
                   help='users per evaluation chunk (default: about 4M '
                   'scores per chunk)')
    e.add_argument('--patience', type=int, default=None,
                   help='stop after this many validations without gain')
    e.add_argument('--monitor', default=None,
                   help='validation metric of model selection (default '
                   'recall@20; session models: hit@20); its cut-off must '
                   'be one of --ks')
    e.add_argument('--ks', type=int, nargs='+', default=None,
                   help='cut-offs of the metrics (default 10 20)')
    e.add_argument('--seed', type=int, default=None, help='default 0')
    e.add_argument('--device', default='auto',
                   help='auto (CUDA when available, the default), cpu, '
                   'cuda or cuda:N; under torchrun each process takes the '
                   'GPU of its LOCAL_RANK')
    e.add_argument('--deterministic', action='store_true',
                   help='deterministic kernels only '
                   '(torch.use_deterministic_algorithms): reproducible '
                   'CUDA runs, at some speed')
    e.add_argument('--out', required=True, help='the run folder')
    e.add_argument('--resume', action='store_true',
                   help='continue the run in --out from its last epoch')
    e.add_argument('--no-progress', dest='progress', action='store_false')


def build_parser() -> argparse.ArgumentParser:
    """The ``pyg-recsys`` parser."""
    p = argparse.ArgumentParser(
        prog='pyg-recsys',
        description='Graph and sequential recommendation on PyG.')
    p.add_argument('-q', '--quiet', action='store_true',
                   help='only warnings on stderr (no per-epoch log lines)')
    p.add_argument('--debug', action='store_true',
                   help='show the traceback of an error')
    sub = p.add_subparsers(dest='command', required=True)
    _add_train(sub)
    r = sub.add_parser('recommend',
                       help='top-K items for a user or a session of a run')
    r.add_argument('--run', required=True, help='the run folder')
    who = r.add_mutually_exclusive_group(required=True)
    who.add_argument('--user', help='original user id')
    who.add_argument('--session',
                     help='next-item runs: the original item ids of a '
                          'session in time order, e.g. "214 5 78"')
    r.add_argument('--k', type=int, default=10)
    r.add_argument('--device', default='cpu',
                   help='where to load the model (cpu, cuda, cuda:1 ...)')
    x = sub.add_parser('export', help='write the embedding tables of a run '
                                      'with their original ids')
    x.add_argument('--run', required=True, help='the run folder')
    x.add_argument('--out', required=True, help='the folder to write')
    x.add_argument('--format', choices=('parquet', 'npy'), default=None,
                   help='parquet (needs pyarrow; the default where it is '
                        'installed) or npy (.npy tables + JSON ids)')
    v = sub.add_parser('serve', help='answer recommendations of a run over '
                                     'HTTP (JSON)')
    v.add_argument('--run', required=True, help='the run folder')
    v.add_argument('--host', default='127.0.0.1')
    v.add_argument('--port', type=int, default=8000)
    v.add_argument('--device', default='cpu')
    v.add_argument('--threads', type=int, default=1,
                   help='torch threads of the server (default 1: a '
                        'request is one small product, where more threads '
                        'cost more in handing over than they save)')
    for cmd in (r, x, v):  # a moved run: where its data are now
        cmd.add_argument('--root', default=None,
                         help='the data root, where it is not the run\'s')
        cmd.add_argument('--raw-dir', default=None,
                         help='the raw files\' folder, where it is not the '
                              'run\'s')
    d = sub.add_parser('datasets', help='list datasets and where each is')
    d.add_argument('--root', default=None)
    return p


__all__ = ['DEFAULTS', 'NEGATIVES', 'build_parser']
