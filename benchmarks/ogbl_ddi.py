"""GraphSAGE and GAT link prediction on ogbl-ddi, scored by OGB's own
evaluator, next to the OGB paper's figures.

Protocol (OGB's reference ``examples/linkproppred/ddi/gnn.py``): a
learnable 256-d embedding per drug (Xavier init), two PyG convolutions
(:class:`SAGEConv`, or :class:`GATConv` with concatenated heads) with ReLU
and dropout 0.5 over the training graph, an MLP link predictor over the
Hadamard product of the two end points (hidden 256, 2 layers, dropout
0.5), trained with binary cross-entropy against as many random negatives
(``negative_sampling``, method ``'dense'``) as positives, Adam lr 0.005,
64*1024 edges per step (a full-graph pass per step), gradients clipped to
norm 1, 200 epochs.  Hits@20 on valid and test every ``--eval-every``
epochs through ``ogb.linkproppred.Evaluator('ogbl-ddi')``; each seed's
test figure is the one at its best validation epoch; mean and sample
standard deviation over seeds, as OGB's logger.  Deviations from the
reference: the loss is computed from logits with ``softplus`` (the same
cross-entropy without OGB's ``1e-15`` guard), and GAT, which OGB has no
reference for, uses ``--heads`` concatenated heads of ``hidden / heads``
in every layer (self-loops added, as GATConv does on a plain graph).

    python benchmarks/ogbl_ddi.py                          # 10 seeds each
    python benchmarks/ogbl_ddi.py --models sage --seeds 0 1 2 --epochs 200
    python benchmarks/ogbl_ddi.py --smoke                  # seconds

Writes ``benchmarks/results/ogbl_ddi.{json,md}`` (``*_smoke.*`` with
``--smoke``); finished (model, seed) runs are kept in ``--runs`` and only
re-read when the command is repeated.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import machine, write_results  # benchmarks/, beside this
from torch import Tensor
from torch_geometric.nn import GATConv, SAGEConv
from torch_geometric.utils import negative_sampling

from pyg_recsys import typing as pt
from pyg_recsys.metrics import link_hits_at_k

HERE = Path(__file__).resolve().parent
# OGB paper (Hu et al., NeurIPS 2020), Table 4: test Hits@20 (%), 10 seeds.
PUBLISHED = {'GraphSAGE': (53.90, 4.74), 'GCN': (37.07, 5.07)}
PUBLISHED_EPOCHS = 200  # OGB's reference script
NAMES = {'sage': 'GraphSAGE', 'gat': 'GAT'}


class Encoder(torch.nn.Module):
    """Node embeddings through ``num_layers`` PyG convolutions (the same
    layers as :class:`pyg_recsys.nn.models.SAGERecommender` and
    :class:`~pyg_recsys.nn.models.GATRecommender`, on the homogeneous
    graph)."""

    def __init__(self, kind: str, num_nodes: int, hidden: int,
                 num_layers: int, dropout: float, heads: int) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(num_nodes, hidden)
        self.convs = torch.nn.ModuleList()
        for _ in range(num_layers):
            if kind == 'sage':
                self.convs.append(SAGEConv(hidden, hidden))
            else:  # concatenated heads in every layer keep messages at d
                self.convs.append(GATConv(hidden, hidden // heads,
                                          heads=heads))
        self.dropout = dropout

    def reset_parameters(self) -> None:
        torch.nn.init.xavier_uniform_(self.emb.weight)
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, adj) -> Tensor:
        x = self.emb.weight
        for i, conv in enumerate(self.convs):
            x = conv(x, adj)
            if i < len(self.convs) - 1:
                x = F.dropout(x.relu(), self.dropout, self.training)
        return x


class LinkPredictor(torch.nn.Module):
    """MLP over the Hadamard product of the two end points (OGB's)."""

    def __init__(self, hidden: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        dims = [hidden] * num_layers + [1]
        self.lins = torch.nn.ModuleList(
            torch.nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.dropout = dropout

    def reset_parameters(self) -> None:
        for lin in self.lins:
            lin.reset_parameters()

    def forward(self, h_i: Tensor, h_j: Tensor) -> Tensor:
        x = h_i * h_j
        for lin in self.lins[:-1]:
            x = F.dropout(lin(x).relu(), self.dropout, self.training)
        return self.lins[-1](x).view(-1)  # a logit


def hits_at(pos: Tensor, neg: Tensor, k: int) -> float:
    """OGB's evaluator where ogb is installed, our identical helper
    (tested against it) otherwise."""
    if pt.WITH_OGB:
        from ogb.linkproppred import Evaluator
        evaluator = Evaluator(name='ogbl-ddi')
        evaluator.K = k
        return evaluator.eval({'y_pred_pos': pos,
                               'y_pred_neg': neg})[f'hits@{k}']
    return link_hits_at_k(pos, neg, k)  # pragma: no cover


def load(args) -> tuple[int, Tensor, dict]:
    """(num_nodes, edge_index of both directions, OGB edge split)."""
    if args.smoke:
        return synthetic()
    from pyg_recsys.datasets.ogb import OGBLinkDataset
    ds = OGBLinkDataset('ogbl-ddi', root=args.root, raw_dir=args.raw_dir)
    return ds.num_nodes, ds.data.edge_index, ds.edge_split()


def synthetic(num_nodes: int = 120, num_edges: int = 1500,
              seed: int = 0) -> tuple[int, Tensor, dict]:
    """A tiny random graph with OGB's split layout, for ``--smoke``."""
    gen = torch.Generator().manual_seed(seed)
    group = torch.arange(num_nodes) % 4
    src = torch.randint(0, num_nodes, (4 * num_edges,), generator=gen)
    dst = torch.randint(0, num_nodes, (4 * num_edges,), generator=gen)
    keep = (group[src] == group[dst]) & (src < dst)
    key = torch.unique(src[keep] * num_nodes + dst[keep])[:num_edges]
    edges = torch.stack([key // num_nodes, key % num_nodes], 1)
    edges = edges[torch.randperm(edges.size(0), generator=gen)]
    n = edges.size(0) // 10
    neg = torch.randint(0, num_nodes, (2 * n, 2), generator=gen)
    split = {'train': {'edge': edges[2 * n:]},
             'valid': {'edge': edges[:n], 'edge_neg': neg[:n]},
             'test': {'edge': edges[n:2 * n], 'edge_neg': neg[n:]}}
    train = split['train']['edge'].t()
    return num_nodes, torch.cat([train, train.flip(0)], 1), split


@torch.no_grad()
def evaluate(encoder, predictor, adj, split, batch_size) -> dict:
    encoder.eval()
    predictor.eval()
    h = encoder(adj)

    def scores(edges: Tensor) -> Tensor:
        return torch.cat([predictor(h[e[:, 0]], h[e[:, 1]])
                          for e in edges.split(batch_size)])

    out = {}
    for part in ('valid', 'test'):
        pos = scores(split[part]['edge'])
        neg = scores(split[part]['edge_neg'])
        out[part] = {f'hits@{k}': hits_at(pos, neg, k) for k in (10, 20, 30)}
    return out


def run(kind: str, seed: int, num_nodes: int, edge_index: Tensor,
        split: dict, args) -> dict:
    torch.manual_seed(seed)
    adj = edge_index
    if pt.WITH_TORCH_SPARSE:  # OGB's reference runs on a SparseTensor
        from torch_sparse import SparseTensor
        adj = SparseTensor.from_edge_index(
            edge_index, sparse_sizes=(num_nodes, num_nodes)).t()
    encoder = Encoder(kind, num_nodes, args.hidden, args.layers,
                      args.dropout, args.heads)
    predictor = LinkPredictor(args.hidden, args.layers, args.dropout)
    encoder.reset_parameters()
    predictor.reset_parameters()
    params = list(encoder.parameters()) + list(predictor.parameters())
    opt = torch.optim.Adam(params, lr=args.lr)
    train = split['train']['edge']
    history, best = [], None
    for epoch in range(1, args.epochs + 1):
        encoder.train()
        predictor.train()
        t0 = time.perf_counter()
        total = 0.0
        for perm in torch.randperm(train.size(0)).split(args.batch_size):
            opt.zero_grad()
            h = encoder(adj)
            edge = train[perm].t()
            pos = predictor(h[edge[0]], h[edge[1]])
            neg_edge = negative_sampling(edge_index, num_nodes=num_nodes,
                                         num_neg_samples=perm.numel(),
                                         method='dense')
            neg = predictor(h[neg_edge[0]], h[neg_edge[1]])
            # = -log(sigmoid(pos)) - log(1 - sigmoid(neg)), stably
            loss = F.softplus(-pos).mean() + F.softplus(neg).mean()
            loss.backward()
            for group in (encoder.emb.parameters(), encoder.convs.parameters(),
                          predictor.parameters()):
                torch.nn.utils.clip_grad_norm_(list(group), 1.0)
            opt.step()
            total += float(loss) * perm.numel()
        record = dict(epoch=epoch, loss=total / train.size(0),
                      seconds=time.perf_counter() - t0)
        if epoch % args.eval_every == 0 or epoch == args.epochs:
            t0 = time.perf_counter()
            record.update(evaluate(encoder, predictor, adj, split,
                                   args.batch_size))
            record['eval_seconds'] = time.perf_counter() - t0
            if best is None or (record['valid']['hits@20']
                                > best['valid']['hits@20']):
                best = record
        history.append(record)
    secs = sorted(r['seconds'] for r in history)
    return dict(model=kind, seed=seed, best_epoch=best['epoch'],
                valid=best['valid'], test=best['test'],
                seconds_per_epoch=secs[len(secs) // 2], history=history)


def mean_std(values: list[float]) -> tuple[float, float]:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), std


def markdown(record: dict) -> list[str]:
    """The markdown table of an ``ogbl_ddi.json`` record (the published
    rows from its ``published`` entry, trained :data:`PUBLISHED_EPOCHS`
    epochs)."""
    where, options = record['machine'], record['options']
    md = ['# ogbl-ddi: GraphSAGE and GAT (test Hits@20, %)', '',
          f'Data: {record["data"]}. OGB protocol: fixed negatives, '
          "ogb Evaluator('ogbl-ddi'); test at the best validation epoch; "
          'mean ± sample std over seeds.', '',
          '| model | seeds | epochs | valid Hits@20 | test Hits@20 | '
          's/epoch |', '|---|---:|---:|---:|---:|---:|']
    for kind, s in record['summary'].items():
        md.append(f'| {NAMES[kind]} (ours) | {len(s["seeds"])} | '
                  f'{options["epochs"]} | '
                  f'{s["valid"][0]:.2f} ± {s["valid"][1]:.2f} | '
                  f'{s["test"][0]:.2f} ± {s["test"][1]:.2f} | '
                  f'{s["seconds_per_epoch"]:.2f} |')
    for name, (mean, std) in record['published'].items():
        md.append(f'| {name} (OGB paper) | 10 | {PUBLISHED_EPOCHS} | - | '
                  f'{mean:.2f} ± {std:.2f} | - |')
    md += ['', 'Options: ' + ', '.join(f'{k}={v}' for k, v in
                                       options.items()),
           f'Machine: {where["cpus"]} cores, {where["threads"]} '
           f'threads, torch {where["torch"]}.']
    return md


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--models', nargs='+', choices=list(NAMES),
                   default=list(NAMES))
    p.add_argument('--seeds', nargs='+', type=int, default=list(range(10)))
    p.add_argument('--epochs', type=int, default=200)
    p.add_argument('--eval-every', type=int, default=5)
    p.add_argument('--hidden', type=int, default=256)
    p.add_argument('--layers', type=int, default=2)
    p.add_argument('--heads', type=int, default=4, help='GAT heads')
    p.add_argument('--dropout', type=float, default=0.5)
    p.add_argument('--lr', type=float, default=0.005)
    p.add_argument('--batch-size', type=int, default=64 * 1024)
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--root', default=None, help='writable data root')
    p.add_argument('--raw-dir', default=None,
                   help='ogbl-ddi in OGB layout (raw/, split/)')
    p.add_argument('--runs', type=Path, default=Path('runs/ogbl_ddi'))
    p.add_argument('--results', type=Path, default=HERE / 'results')
    p.add_argument('--smoke', action='store_true',
                   help='tiny random graph, 2 epochs, 2 seeds')
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:
        args.epochs, args.eval_every, args.seeds = 2, 1, [0, 1]
        args.hidden, args.batch_size = 16, 256
        args.runs = Path(tempfile.mkdtemp()) / 'runs'
    if args.hidden % args.heads:
        raise SystemExit(f'ogbl_ddi: --hidden ({args.hidden}) must be '
                         f'divisible by --heads ({args.heads})')

    num_nodes, edge_index, split = load(args)
    rows = []
    for kind in args.models:
        for seed in args.seeds:
            path = args.runs / f'{kind}_seed{seed}.json'
            if path.is_file():
                rows.append(json.loads(path.read_text()))
                continue
            rec = run(kind, seed, num_nodes, edge_index, split, args)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(rec, indent=1))
            rows.append(rec)
            print(f'{NAMES[kind]} seed {seed}: valid hits@20 '
                  f'{100 * rec["valid"]["hits@20"]:.2f} test '
                  f'{100 * rec["test"]["hits@20"]:.2f} (epoch '
                  f'{rec["best_epoch"]}, {rec["seconds_per_epoch"]:.2f} '
                  f's/epoch)', flush=True)

    summary = {}
    for kind in args.models:
        mine = [r for r in rows if r['model'] == kind]
        summary[kind] = dict(
            seeds=[r['seed'] for r in mine],
            valid=mean_std([100 * r['valid']['hits@20'] for r in mine]),
            test=mean_std([100 * r['test']['hits@20'] for r in mine]),
            seconds_per_epoch=statistics.median(
                r['seconds_per_epoch'] for r in mine))
    options = {k: getattr(args, k) for k in (
        'epochs', 'eval_every', 'hidden', 'layers', 'heads', 'dropout', 'lr',
        'batch_size')}
    where = machine()
    out = dict(benchmark='ogbl-ddi link prediction, Hits@20 (%)',
               data='synthetic (smoke)' if args.smoke else 'ogbl-ddi',
               summary=summary, published=PUBLISHED, options=options,
               machine=where, runs=[{k: v for k, v in r.items()
                                       if k != 'history'} for r in rows],
               smoke=args.smoke)
    md = markdown(out)
    write_results(args.results, 'ogbl_ddi', out, md, args.smoke)
    return out


if __name__ == '__main__':
    main()
