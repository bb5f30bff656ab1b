"""Retrieval of every Gowalla user's top-20 from a trained LightGCN: exact
and approximate faiss indexes against our chunked exact top-k and PyG's
``MIPSKNNIndex``, in the same run.

Case: the 29,858 users' final LightGCN embeddings as queries, the 40,981
items' as the index, inner product, k = 20, each user's known items
(training, validation and test) excluded.  The model is trained through
``pyg-recsys train`` (the run folder resumes; ``--epochs`` sets its
length) and loaded with :func:`pyg_recsys.serving.load_run`.

Methods:

* ``chunked exact (ours)``: ``model.recommend`` (``ops.topk.chunked_topk``:
  users x items scores in chunks, known items masked, top-k): the
  reference every recall is measured against;
* ``faiss exact`` / ``faiss HNSW`` / ``faiss IVF``:
  :class:`pyg_recsys.serving.ItemIndex` (known items excluded by asking
  for k plus the user's count and dropping them);
* ``PyG MIPSKNNIndex``: ``torch_geometric.nn.pool.MIPSKNNIndex`` (faiss
  ``IndexFlatIP``), known items through its ``exclude_links``.

Recall@20 of a method is the share of the reference's 20 items it
returns, averaged over users; queries per second count every user once
(index build time apart).  Threads: torch's and faiss' default on this
machine (both print in the record).

    python benchmarks/retrieval_gowalla.py
    python benchmarks/retrieval_gowalla.py --epochs 20
    python benchmarks/retrieval_gowalla.py --hnsw-ef 32 512 --ivf-nprobe 8
    python benchmarks/retrieval_gowalla.py --smoke

Writes ``benchmarks/results/retrieval_gowalla.{json,md}``.
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

from _common import machine, resumed_run, write_results  # noqa: E402

K = 20


def _recall(found: torch.Tensor, ref: torch.Tensor) -> float:
    hits = [len(set(a) & set(b) - {-1}) / max(1, len(set(b) - {-1}))
            for a, b in zip(found.tolist(), ref.tolist())]
    return sum(hits) / len(hits)


def _timed(fn, repeat: int):
    best, out = float('inf'), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def measure(run_dir: Path, repeat: int, hnsw_ef: list[int],
            ivf_nprobe: list[int]) -> dict:
    import faiss
    from torch_geometric.nn.pool import MIPSKNNIndex

    from pyg_recsys.serving import ItemIndex, load_run
    run = load_run(run_dir)
    model, split = run.model, run.split
    users = torch.arange(split.num_users)
    known = split.known()
    user_emb, item_emb = (t.detach() for t in model.embeddings())
    rows = []

    secs, (_, ref) = _timed(lambda: model.recommend(users, K,
                                                    exclude=known), repeat)
    rows.append(dict(method='chunked exact (ours)', build_s=0.0,
                     search_s=secs, qps=users.numel() / secs, recall=1.0))

    def faiss_row(name, **kw):
        t0 = time.perf_counter()
        index = ItemIndex(item_emb, **kw)
        build = time.perf_counter() - t0
        s, (_, found) = _timed(lambda: index.search(user_emb, K,
                                                    exclude=known), repeat)
        rows.append(dict(method=name, build_s=build, search_s=s,
                         qps=users.numel() / s,
                         recall=_recall(found, ref), options=kw))

    faiss_row('faiss exact (IndexFlatIP)', kind='exact')
    for ef in hnsw_ef:
        faiss_row(f'faiss HNSW (M=32, ef={ef})', kind='hnsw', ef_search=ef)
    for nprobe in ivf_nprobe:
        faiss_row(f'faiss IVF (nprobe={nprobe})', kind='ivf', nprobe=nprobe)

    t0 = time.perf_counter()
    pyg = MIPSKNNIndex(item_emb)
    build = time.perf_counter() - t0
    links = torch.stack([known.rows(), known.col])
    s, out = _timed(lambda: pyg.search(user_emb, K, exclude_links=links),
                    repeat)
    rows.append(dict(method='PyG MIPSKNNIndex', build_s=build, search_s=s,
                     qps=users.numel() / s,
                     recall=_recall(out.index, ref)))
    base = rows[0]['search_s']
    for r in rows:
        r['speedup_vs_ours'] = base / r['search_s']
    return dict(machine=dict(machine(), faiss=faiss.__version__,
                             faiss_threads=faiss.omp_get_max_threads()),
                case=dict(dataset=run.args.dataset, model=run.args.model,
                          epochs=run.config.get('epochs'),
                          users=int(users.numel()),
                          items=int(split.num_items), k=K,
                          excluded=int(known.nnz),
                          dim=int(item_emb.size(1))),
                repeat=repeat, rows=rows,
                measured=time.strftime('%Y-%m-%d'))


def markdown(record: dict) -> list[str]:
    """The markdown table of a ``retrieval_gowalla.json`` record."""
    c = record['case']
    md = [f"# Retrieval: top-{c['k']} for every user, known items "
          'excluded', '',
          f"{c['model']} on {c['dataset']} ({c['epochs']} epochs): "
          f"{c['users']:,} users against {c['items']:,} items, d = "
          f"{c['dim']}, {c['excluded']:,} known (user, item) pairs "
          f"excluded. Recall@{c['k']} against our chunked exact top-k; "
          f"best of {record['repeat']} searches. Machine: "
          f"{record['machine']}. Measured {record['measured']}. Published "
          'figure: none (a comparison measured here, same run).', '',
          '| method | build (s) | search, all users (s) | queries / s '
          f"| recall@{c['k']} vs exact | speed vs ours |",
          '|---|---:|---:|---:|---:|---:|']
    for r in record['rows']:
        md.append(f"| {r['method']} | {r['build_s']:.2f} | "
                  f"{r['search_s']:.2f} | {r['qps']:,.0f} | "
                  f"{r['recall']:.4f} | {r['speedup_vs_ours']:.2f}x |")
    return md


def trained_run(runs: Path, epochs: int, tmp: Path, smoke: bool) -> Path:
    """The LightGCN Gowalla run folder these benchmarks query, trained (or
    resumed to ``epochs``) through ``pyg-recsys train``; with ``smoke``,
    one epoch on MovieLens-100K under ``tmp``."""
    if smoke:
        run_dir = tmp / 'run'
        resumed_run(['-q', 'train', '--model', 'lightgcn', '--dataset',
                     'movielens-100k', '--epochs', '1', '--dim', '16',
                     '--no-progress', '--root', str(tmp / 'data'),
                     '--out', str(run_dir)], run_dir)
        return run_dir
    run_dir = runs / 'lightgcn-gowalla-retrieval'
    resumed_run(['-q', 'train', '--model', 'lightgcn', '--dataset',
                 'gowalla', '--epochs', str(epochs), '--eval-every',
                 str(epochs), '--no-progress', '--out', str(run_dir)],
                run_dir)
    return run_dir


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--epochs', type=int, default=10,
                   help='LightGCN training epochs (the run resumes)')
    p.add_argument('--runs', type=Path, default=HERE.parent / 'runs'
                   / 'bench')
    p.add_argument('--repeat', type=int, default=3)
    p.add_argument('--hnsw-ef', type=int, nargs='+', default=[64, 128, 256],
                   help='HNSW search breadths, one row each')
    p.add_argument('--ivf-nprobe', type=int, nargs='+',
                   default=[16, 64, 256],
                   help='IVF cells searched, one row each')
    p.add_argument('--out', type=Path, default=HERE / 'results')
    p.add_argument('--smoke', action='store_true',
                   help='MovieLens-100K, 1 epoch, into a temporary folder')
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = trained_run(args.runs, args.epochs, Path(tmp), args.smoke)
        if args.smoke:
            args.repeat = 1
        record = measure(run_dir, args.repeat, args.hnsw_ef,
                         args.ivf_nprobe)
    record['smoke'] = args.smoke
    write_results(args.out, 'retrieval_gowalla', record, markdown(record),
                  smoke=args.smoke)


if __name__ == '__main__':
    main()
