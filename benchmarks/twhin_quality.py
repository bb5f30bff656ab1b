"""TwHIN as a recommender and as pre-trained embeddings, against BPR-MF on
the same split and budget, with and without the knowledge graph; and its
link prediction on held-out knowledge-graph triples.

Data: MovieLens-100K with RecBole's Freebase graph and Last.FM with
KGCN's graph, positives only, random 8/1/1 per user, full ranking with
known items masked, recall / ndcg@20 on test at the epoch selected on
validation recall@20.  Rows, all ``--epochs`` epochs, Adam ``--lr``,
d = ``--dim``:

* BPR-MF (one uniform negative, batch 2048);
* TwHIN on the interactions only, and on the interactions plus every
  knowledge-graph relation (in-batch negatives per relation, batch
  ``--twhin-batch``), scored through the interaction relation;
* BPR-MF and LightGCN whose user and item tables start from TwHIN's (KG)
  tables, against the same models from a random start.

Link prediction: 10% of the item-entity triples are held out of TwHIN's
training graph; each held-out triple's tail is ranked among all nodes of
its type, the other known triples masked (filtered MRR, Hits@10).

    python benchmarks/twhin_quality.py
    python benchmarks/twhin_quality.py --datasets lastfm-kg --epochs 40
    python benchmarks/twhin_quality.py --smoke

Writes ``benchmarks/results/twhin_quality.{json,md}``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import (  # noqa: E402
    machine,
    write_lastfm_smoke,
    write_results,
)

from pyg_recsys.cli.run import load_dataset  # noqa: E402
from pyg_recsys.data.loader import PairLoader  # noqa: E402
from pyg_recsys.metrics import filtered_ranks  # noqa: E402
from pyg_recsys.nn.models import MF, LightGCN, TwHIN  # noqa: E402
from pyg_recsys.ops.csr import CSR  # noqa: E402
from pyg_recsys.sampling import UniformSampler  # noqa: E402
from pyg_recsys.schema import (  # noqa: E402
    ENTITY,
    ITEM,
    ITEM_USER,
    USER,
    USER_ITEM,  # noqa: E402
)
from pyg_recsys.train import RankingEvaluator, Trainer, adam  # noqa: E402

SPLITS = {'movielens-100k-kg': None, 'lastfm-kg': 'random'}


def fit(model, loader, split, args) -> tuple[dict, float]:
    t0 = time.perf_counter()
    result = Trainer(model, loader, RankingEvaluator(split, ks=(20,)),
                     optimizer=adam(model.parameters(), lr=args.lr),
                     epochs=args.epochs, eval_every=args.eval_every,
                     monitor='recall@20', progress=False).fit()
    seconds = (time.perf_counter() - t0) / args.epochs
    return result, seconds


def row(name, result, seconds) -> dict:
    return dict(row=name, best_epoch=result['best_epoch'],
                recall20=result['test']['recall@20'],
                ndcg20=result['test']['ndcg@20'], s_per_epoch=seconds)


def pairs(split, seed=0):
    return PairLoader(split.train, UniformSampler(
        split.num_items, exclude=split.csr('train')), batch_size=2048,
        seed=seed)


def init_from(model, tables) -> None:
    with torch.no_grad():
        model.embedding[USER].copy_(tables[USER])
        model.embedding[ITEM].copy_(tables[ITEM])


def link_prediction(split, args) -> dict:
    """TwHIN trained with 10% of the item-entity triples held out; their
    tails ranked among all nodes of the tail's type, filtered."""
    gen = torch.Generator().manual_seed(0)
    held: dict = {}
    kept = dict(split.side)
    for etype, ei in split.side.items():
        if etype[0] != ITEM or etype[2] != ENTITY or ei.size(1) < 10:
            continue
        perm = torch.randperm(ei.size(1), generator=gen)
        n = ei.size(1) // 10
        held[etype], kept[etype] = ei[:, perm[:n]], ei[:, perm[n:]]
    side, split.side = split.side, kept
    graph = split.graph()
    split.side = side
    torch.manual_seed(0)
    model = TwHIN(graph, args.dim)
    Trainer(model, model.triple_loader(args.twhin_batch),
            RankingEvaluator(split, ks=(20,)),
            optimizer=adam(model.parameters(), lr=args.lr),
            epochs=args.epochs, eval_every=args.epochs,
            monitor='recall@20', progress=False).fit()
    model.eval()
    rr, hits, n_all = 0.0, 0.0, 0
    ent = model.embedding[ENTITY]
    with torch.no_grad():
        for etype, test in held.items():
            r = model.relations.index(etype)
            known = CSR.from_pairs(side[etype][0], side[etype][1],
                                   split.num_items, ent.size(0))
            scores = model.embedding[ITEM][test[0]] @ (
                ent + model.relation.weight[r]).t()
            ranks = filtered_ranks(scores, test[1], known, test[0])
            rr += float((1.0 / ranks.double()).sum())
            hits += float((ranks <= 10).sum())
            n_all += ranks.numel()
    return dict(held_out=n_all, mrr=rr / max(n_all, 1),
                hits10=hits / max(n_all, 1))


def run(dataset: str, args, raw: Path | None) -> dict:
    ds = load_dataset(dataset, None, None if raw is None else str(raw))
    kind = SPLITS[dataset]
    split = ds.split(seed=0, **({'kind': kind} if kind else {}))
    rows = []
    torch.manual_seed(0)
    mf = MF(split.num_users, split.num_items, embedding_dim=args.dim)
    rows.append(row('BPR-MF', *fit(mf, pairs(split), split, args)))
    graph = split.graph()
    tables = None
    for name, g in (('TwHIN, interactions only',
                     graph.edge_type_subgraph([USER_ITEM, ITEM_USER])),
                    ('TwHIN, interactions + KG', graph)):
        torch.manual_seed(0)
        tw = TwHIN(g, args.dim)
        rows.append(row(name, *fit(tw, tw.triple_loader(args.twhin_batch),
                                   split, args)))
        tables = tw.node_embeddings()
    torch.manual_seed(0)
    mf2 = MF(split.num_users, split.num_items, embedding_dim=args.dim)
    init_from(mf2, tables)
    rows.append(row('BPR-MF from TwHIN (KG) tables',
                    *fit(mf2, pairs(split), split, args)))
    for name, start in (('LightGCN', None),
                        ('LightGCN from TwHIN (KG) tables', tables)):
        torch.manual_seed(0)
        lg = LightGCN(split.num_users, split.num_items, split.train,
                      embedding_dim=args.dim, num_layers=3)
        if start is not None:
            init_from(lg, start)
        rows.append(row(name, *fit(lg, pairs(split), split, args)))
    return dict(dataset=dataset, rows=rows,
                link_prediction=link_prediction(split, args))


def markdown(record: dict) -> list[str]:
    """The markdown tables of a ``twhin_quality.json`` record."""
    results = record['results']
    md = ['# TwHIN: recommender, pre-trained tables, link prediction', '',
          f"Protocol: {record['protocol']}; {record['epochs']} epochs each "
          f"(validation every {record['eval_every']}), Adam {record['lr']}, "
          f"d = {record['dim']}. Machine: {record['machine']}. Published "
          'figure: none on these data sets.', '',
          '| data set | model | best epoch | test recall@20 | test '
          'ndcg@20 | s / epoch |', '|---|---|---:|---:|---:|---:|']
    for res in results:
        for r in res['rows']:
            md.append(f"| {res['dataset']} | {r['row']} | "
                      f"{r['best_epoch']} | {r['recall20']:.4f} | "
                      f"{r['ndcg20']:.4f} | {r['s_per_epoch']:.2f} |")
    md += ['', 'Link prediction on held-out item-entity triples (10%, '
           'tails ranked among all entities, filtered):', '',
           '| data set | held-out triples | MRR | Hits@10 |',
           '|---|---:|---:|---:|']
    for res in results:
        lp = res['link_prediction']
        md.append(f"| {res['dataset']} | {lp['held_out']} | "
                  f"{lp['mrr']:.4f} | {lp['hits10']:.4f} |")
    return md


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--datasets', nargs='+', default=list(SPLITS),
                   choices=list(SPLITS))
    p.add_argument('--epochs', type=int, default=30)
    p.add_argument('--eval-every', type=int, default=5)
    p.add_argument('--lr', type=float, default=5e-3)
    p.add_argument('--dim', type=int, default=64)
    p.add_argument('--twhin-batch', type=int, default=2048)
    p.add_argument('--out', type=Path, default=HERE / 'results')
    p.add_argument('--smoke', action='store_true',
                   help='tiny synthetic data, two epochs')
    args = p.parse_args(argv)
    tmp = tempfile.TemporaryDirectory()
    raw = None
    datasets = args.datasets
    if args.smoke:
        raw = write_lastfm_smoke(Path(tmp.name) / 'raw')
        datasets = ['lastfm-kg']
        args.epochs, args.eval_every, args.dim = 2, 1, 8
        args.twhin_batch = 64
    results = [run(name, args, raw) for name in datasets]
    tmp.cleanup()
    record = dict(machine=machine(), smoke=args.smoke, results=results,
                  epochs=args.epochs, eval_every=args.eval_every,
                  lr=args.lr, dim=args.dim,
                  protocol='positives only, random 8/1/1 per user, full '
                           'ranking, known items masked; selected on '
                           'validation recall@20')
    md = markdown(record)
    write_results(args.out, 'twhin_quality', record, md, smoke=args.smoke)


if __name__ == '__main__':
    main()
