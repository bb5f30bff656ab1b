"""LightGCN training speed (and quality) on Gowalla: ours against PyG's.

Paper recipe (He et al., SIGIR 2020): 3 layers, d = 64, batch 2048, Adam
lr 1e-3, L2 1e-4, one uniform negative per pair.  Ours is
:class:`pyg_recsys.nn.models.LightGCN` trained with :class:`PairLoader` +
:class:`UniformSampler` (train positives excluded) + ``model.loss`` + Adam;
the peer is PyG's ``torch_geometric.nn.models.LightGCN`` as its example
trains it (``../shared/peers/pyg_lightgcn.py``, run in the same process
tree, same Python), with ``edge_index`` and with a ``SparseTensor``.

Timings are seconds per mini-batch: sampling, forward, backward and
optimizer step, averaged over ``--batches`` batches after a warm-up, the
minimum over ``--repeats`` runs (other processes may share the CPU).  An
ablation row runs our model with full propagation (every node, all layers)
per step, to show what the row-selective last layer buys.

    python benchmarks/lightgcn_gowalla.py               # speed, with peers
    python benchmarks/lightgcn_gowalla.py --epochs 5    # + recall/ndcg@20
    python benchmarks/lightgcn_gowalla.py --smoke       # tiny graph (CI)

Writes ``benchmarks/results/lightgcn_gowalla.{json,md}``
(``lightgcn_gowalla_smoke.*`` with ``--smoke``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch import Tensor

from pyg_recsys.data.loader import PairLoader
from pyg_recsys.datasets.lightgcn import read_lightgcn
from pyg_recsys.metrics import evaluate_ranking
from pyg_recsys.nn.models import LightGCN
from pyg_recsys.ops import NormAdj
from pyg_recsys.ops.csr import CSR
from pyg_recsys.ops.propagate import propagate
from pyg_recsys.sampling import UniformSampler

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / 'shared'


def data_root() -> Path:
    env = os.environ.get('PYG_RECSYS_DATA')
    return Path(env) if env else SHARED / 'datasets'


# ----------------------------------------------------------------------
# data
def load(folder: Path) -> dict:
    """train/test pairs of a LightGCN-format folder; ids counted as the
    peer counts them (max over train and test, plus one)."""
    tu, ti = (torch.from_numpy(a) for a in
              read_lightgcn(str(folder / 'train.txt')))
    su, si = (torch.from_numpy(a) for a in
              read_lightgcn(str(folder / 'test.txt')))
    return dict(train=torch.stack([tu, ti]), test=torch.stack([su, si]),
                num_users=int(max(tu.max(), su.max())) + 1,
                num_items=int(max(ti.max(), si.max())) + 1)


def write_synthetic(folder: Path, num_users: int = 300,
                    num_items: int = 500, per_user: int = 20,
                    seed: int = 0) -> None:
    """A random LightGCN-format folder (every user has train and test
    items)."""
    gen = torch.Generator().manual_seed(seed)
    with open(folder / 'train.txt', 'w') as tr, \
            open(folder / 'test.txt', 'w') as te:
        for u in range(num_users):
            n = int(torch.randint(per_user // 2, per_user * 2, (1, ),
                                  generator=gen))
            items = torch.randperm(num_items, generator=gen)[:n].tolist()
            cut = max(1, n // 5)
            tr.write(' '.join(map(str, [u] + items[cut:])) + '\n')
            te.write(' '.join(map(str, [u] + items[:cut])) + '\n')


# ----------------------------------------------------------------------
# ours
class FullPropagationLightGCN(LightGCN):
    """Ablation: every step propagates all nodes through all layers (the
    PyG way, but with our adjacency and SpMM), then picks the batch rows."""

    def forward(self, index: Tensor | None = None) -> Tensor:
        out = propagate(self.adj, self.embedding.weight, self.num_layers,
                        self.alpha)
        return out if index is None else out[index]

    def _loss_embeddings(self, nodes: Tensor) -> tuple[Tensor, Tensor]:
        return self(nodes), self.embedding(nodes)


def make_optimizer(model: torch.nn.Module, lr: float, fused: bool):
    if fused:
        try:
            return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
        except (RuntimeError, TypeError):  # fused Adam not on this device
            pass
    return torch.optim.Adam(model.parameters(), lr=lr)


def setup(data: dict, args, cls=LightGCN, seed: int = 0):
    torch.manual_seed(seed)
    model = cls(data['num_users'], data['num_items'], data['train'],
                embedding_dim=args.dim, num_layers=args.layers,
                reg_weight=args.reg)
    seen = CSR.from_pairs(data['train'][0], data['train'][1],
                          data['num_users'], data['num_items'])
    sampler = UniformSampler(data['num_items'], exclude=seen)
    loader = PairLoader(data['train'], sampler, batch_size=args.batch_size,
                        seed=seed)
    return model, make_optimizer(model, args.lr, not args.no_fused), loader


def time_cli(folder: Path, args) -> dict:
    """Our LightGCN as users run it: ``pyg-recsys train --model lightgcn
    --dataset gowalla`` on ``folder`` in a fresh process, timed by the
    ``train_seconds`` of its ``metrics.json`` (training only; the CLI holds
    10% of each user's training items out for validation, so its epoch has
    fewer batches: compare per batch)."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / 'run'
        cmd = [sys.executable, '-m', 'pyg_recsys', '-q', 'train', '--model',
               'lightgcn', '--dataset', 'gowalla', '--raw-dir', str(folder),
               '--root', str(Path(tmp) / 'data'), '--out', str(run),
               '--device', 'cpu', '--no-progress',
               '--epochs', str(args.cli_epochs),
               '--eval-every', str(args.cli_epochs),
               '--batch-size', str(args.batch_size), '--dim', str(args.dim),
               '--layers', str(args.layers), '--reg', str(args.reg),
               '--lr', str(args.lr)]
        env = dict(os.environ)
        if args.threads:
            env['OMP_NUM_THREADS'] = str(args.threads)
        subprocess.run(cmd, check=True, env=env, cwd=tmp,
                       stdout=subprocess.DEVNULL)
        epochs = json.loads((run / 'metrics.json').read_text())['epochs']
    seconds = [r['train_seconds'] for r in epochs]
    steps = epochs[0]['steps']
    per_batch = sum(seconds) / (steps * len(seconds))
    return dict(epoch_s=seconds, steps=steps, sec_per_batch=per_batch,
                projected_epoch_s=per_batch * -(-args.train_pairs //
                                                args.batch_size))


def batches_forever(loader: PairLoader):
    epoch = 0
    while True:
        loader.set_epoch(epoch)
        yield from loader
        epoch += 1


def time_ours(data: dict, args, cls=LightGCN) -> dict:
    """Seconds per batch (min over repeats of the mean), with the split
    into sampling / forward / backward / optimizer step."""
    best = None
    for rep in range(args.repeats):
        model, opt, loader = setup(data, args, cls, seed=rep)
        model.train()
        it = batches_forever(loader)
        parts = dict(sample=0.0, forward=0.0, backward=0.0, step=0.0)
        for b in range(args.warmup + args.batches):
            if b == args.warmup:
                parts = dict.fromkeys(parts, 0.0)
            t0 = time.perf_counter()
            batch = next(it)
            t1 = time.perf_counter()
            loss = model.loss(batch)
            t2 = time.perf_counter()
            opt.zero_grad()
            loss.backward()
            t3 = time.perf_counter()
            opt.step()
            t4 = time.perf_counter()
            parts['sample'] += t1 - t0
            parts['forward'] += t2 - t1
            parts['backward'] += t3 - t2
            parts['step'] += t4 - t3
        total = sum(parts.values()) / args.batches
        if best is None or total < best['sec_per_batch']:
            best = dict(sec_per_batch=total, **{
                f'{k}_s': v / args.batches for k, v in parts.items()})
    nb = -(-data['train'].size(1) // args.batch_size)
    best.update(batches_per_epoch=nb,
                projected_epoch_s=best['sec_per_batch'] * nb)
    return best


def count_spmm(data: dict, args, cls=LightGCN) -> dict:
    """Full and row-slice sparse products in one training step."""
    model, _, loader = setup(data, args, cls)
    adj = model.adj
    counts = dict(full=0, slice=0, slice_t=0)
    spmm, rows = adj._spmm, adj.rows

    def counting_spmm(x, backend):
        counts['full'] += 1
        return spmm(x, backend)

    def counting_rows(index):
        sub = rows(index)
        matmul, t_matmul = sub.matmul, sub.t_matmul

        def m(x, backend=None):
            counts['slice'] += 1
            return matmul(x, backend)

        def t(g, backend=None):
            counts['slice_t'] += 1
            return t_matmul(g, backend)

        sub.matmul, sub.t_matmul = m, t
        return sub

    adj._spmm, adj.rows = counting_spmm, counting_rows
    model.loss(next(iter(loader))).backward()
    return counts


def time_spmm(adj: NormAdj, dim: int, repeats: int) -> dict:
    """Milliseconds per ``A @ X`` for each backend (min over repeats)."""
    from torch_geometric.utils import spmm as pyg_spmm
    x = torch.randn(adj.num_nodes, dim)
    csr64 = torch.sparse_csr_tensor(adj.rowptr.long(), adj.col.long(),
                                    adj.value, (adj.num_nodes, ) * 2)
    cases = {
        'csr (ours: MKL, int32, addmm into empty)': lambda: adj.spmm(x),
        'torch csr int64, A @ x': lambda: csr64 @ x,
        'torch_geometric.utils.spmm (torch csr)': lambda: pyg_spmm(csr64,
                                                                    x),
        'torch_sparse': lambda: adj.spmm(x, 'torch_sparse'),
        'scatter (index_add_)': lambda: adj.spmm(x, 'scatter'),
    }
    out = {}
    for name, fn in cases.items():
        fn()
        best = float('inf')
        for _ in range(repeats if 'scatter' not in name else 2):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        out[name] = best * 1e3
    return out


def train_epochs(data: dict, args, init: str = 'normal') -> dict:
    """Trains ``args.epochs`` epochs and scores the test part.  ``init``
    ``'xavier'`` re-draws the table as PyG's LightGCN does (Xavier uniform),
    so the quality comparison with the peer differs in nothing but the
    implementation; ``'normal'`` keeps ours (N(0, 0.1^2), as the LightGCN
    reference code)."""
    model, opt, loader = setup(data, args)
    if init == 'xavier':
        torch.nn.init.xavier_uniform_(model.embedding.weight)
    times = []
    for epoch in range(args.epochs):
        model.train()
        loader.set_epoch(epoch)
        t0 = time.perf_counter()
        for batch in loader:
            loss = model.loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    model.eval()
    nu, ni = data['num_users'], data['num_items']
    targets = CSR.from_pairs(data['test'][0], data['test'][1], nu, ni)
    seen = CSR.from_pairs(data['train'][0], data['train'][1], nu, ni)
    t0 = time.perf_counter()
    metrics = evaluate_ranking(model.score, targets, seen, ks=(20, ),
                               metrics=('recall', 'ndcg'))
    return dict(epoch_s=times, mean_epoch_s=sum(times) / len(times),
                eval_s=time.perf_counter() - t0,
                recall20=metrics['recall@20'], ndcg20=metrics['ndcg@20'],
                last_loss=float(loss.detach()))


# ----------------------------------------------------------------------
# peer
def run_peer(folder: Path, args, adj: str, batches: int | None = None,
             epochs: int = 0, evaluate: bool = False) -> dict:
    cmd = [sys.executable, str(args.peer), str(folder), '--adj', adj,
           '--batch-size', str(args.batch_size)]
    if epochs:
        cmd += ['--epochs', str(epochs)]
    else:
        cmd += ['--batches', str(batches)]
    if evaluate:
        cmd += ['--eval']
    env = dict(os.environ)
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads),
                   MKL_NUM_THREADS=str(args.threads))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env,
                         check=False)
    if res.returncode != 0:
        raise RuntimeError(f'lightgcn_gowalla.py: peer {cmd} failed:\n'
                           f'{res.stderr[-2000:]}')
    line = [s for s in res.stdout.splitlines() if s.startswith('{')][-1]
    return json.loads(line)


def time_peer(folder: Path, args, adj: str) -> dict:
    runs = [run_peer(folder, args, adj, batches=args.peer_batches)
            for _ in range(args.peer_repeats)]
    best = min(runs, key=lambda r: r['sec_per_batch'])
    best['all_sec_per_batch'] = [r['sec_per_batch'] for r in runs]
    return best


# ----------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', type=Path,
                   default=data_root() / 'gowalla-lightgcn' / 'raw')
    p.add_argument('--batches', type=int, default=20)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--peer-batches', type=int, default=None,
                   help='default: --batches')
    p.add_argument('--peer-repeats', type=int, default=None,
                   help='default: --repeats')
    p.add_argument('--epochs', type=int, default=0,
                   help='also train E full epochs of ours and of the '
                        'SparseTensor peer and compare recall/ndcg@20')
    p.add_argument('--batch-size', type=int, default=2048)
    p.add_argument('--dim', type=int, default=64)
    p.add_argument('--layers', type=int, default=3)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--reg', type=float, default=1e-4)
    p.add_argument('--threads', type=int, default=None,
                   help='torch threads for ours and the peers (default: '
                        "torch's default)")
    p.add_argument('--no-fused', action='store_true',
                   help='plain (for-loop) Adam instead of fused Adam')
    p.add_argument('--no-peers', action='store_true')
    p.add_argument('--no-cli', action='store_true',
                   help='skip the run through pyg-recsys train')
    p.add_argument('--cli-epochs', type=int, default=2,
                   help='epochs of the pyg-recsys train run')
    p.add_argument('--no-ablation', action='store_true')
    p.add_argument('--peer', type=Path,
                   default=SHARED / 'peers' / 'pyg_lightgcn.py')
    p.add_argument('--out', type=Path, default=HERE / 'results')
    p.add_argument('--smoke', action='store_true',
                   help='tiny synthetic graph, a few batches (CI)')
    args = p.parse_args(argv)
    warnings.filterwarnings('ignore', message='Sparse (CSR tensor support|'
                            'invariant checks)')
    if args.smoke and not args.threads:
        # Timings mean nothing here; one thread keeps a busy CI box from
        # stalling OpenMP barriers.
        args.threads = 1
    if args.threads:
        torch.set_num_threads(args.threads)

    tmp = None
    if args.smoke:
        tmp = tempfile.TemporaryDirectory()
        folder = Path(tmp.name)
        write_synthetic(folder)
        args.batch_size = min(args.batch_size, 256)
        args.batches, args.warmup, args.repeats = 3, 1, 1
        args.epochs = args.epochs or 1
        args.peer_batches, args.peer_repeats = 2, 1
    else:
        folder = args.data
        if not (folder / 'train.txt').exists():
            p.error(f'{folder}/train.txt not found; pass --data or set '
                    f'PYG_RECSYS_DATA (or use --smoke)')
    args.peer_batches = args.peer_batches or args.batches
    args.peer_repeats = args.peer_repeats or args.repeats
    peers = not args.no_peers and args.peer.exists()

    load_before = os.getloadavg()
    data = load(folder)
    adj = LightGCN(data['num_users'], data['num_items'], data['train'],
                   embedding_dim=1).adj
    args.train_pairs = data['train'].size(1)
    res: dict = dict(ours=time_ours(data, args))
    if not args.no_cli:
        res['ours_cli'] = time_cli(folder, args)
    res['spmm_per_step'] = dict(ours=count_spmm(data, args))
    if not args.no_ablation:
        res['ours_full_propagation'] = time_ours(
            data, args, FullPropagationLightGCN)
        res['spmm_per_step']['ours_full_propagation'] = count_spmm(
            data, args, FullPropagationLightGCN)
    res['spmm_ms'] = time_spmm(adj, args.dim, 10 if not args.smoke else 2)
    if peers:
        res['peer_edge_index'] = time_peer(folder, args, 'edge_index')
        res['peer_sparse'] = time_peer(folder, args, 'sparse')
        for key in ('peer_edge_index', 'peer_sparse'):
            res[f'ratio_{key}'] = (res[key]['sec_per_batch'] /
                                   res['ours']['sec_per_batch'])
            if 'ours_cli' in res:
                res[f'ratio_cli_{key}'] = (res[key]['sec_per_batch'] /
                                           res['ours_cli']['sec_per_batch'])
    if args.epochs:
        res['quality'] = dict(
            ours=train_epochs(data, args),
            ours_xavier=train_epochs(data, args, init='xavier'))
        if peers:
            res['quality']['peer_sparse'] = run_peer(
                folder, args, 'sparse', epochs=args.epochs, evaluate=True)
    meta = dict(
        dataset='synthetic' if args.smoke else str(folder),
        num_users=data['num_users'], num_items=data['num_items'],
        train_pairs=data['train'].size(1), nnz=adj.nnz,
        batch_size=args.batch_size, dim=args.dim, layers=args.layers,
        lr=args.lr, reg=args.reg, batches=args.batches,
        warmup=args.warmup, repeats=args.repeats,
        peer_batches=args.peer_batches, peer_repeats=args.peer_repeats,
        epochs=args.epochs, fused_adam=not args.no_fused,
        torch=torch.__version__, threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
        machine=platform.processor() or platform.machine(),
        python=platform.python_version(), load_avg_before=load_before,
        load_avg_after=os.getloadavg(),
        date=time.strftime('%Y-%m-%d %H:%M'))
    write(args.out, 'lightgcn_gowalla_smoke' if args.smoke
          else 'lightgcn_gowalla', meta, res)
    if tmp is not None:
        tmp.cleanup()
    return res


def markdown(record: dict) -> list[str]:
    """The markdown tables of a ``lightgcn_gowalla.json`` record (``meta``
    and ``results``)."""
    meta, res = record['meta'], record['results']
    ours = res['ours']
    lines = [
        '# LightGCN training speed on Gowalla: ours vs PyG',
        '',
        f"{meta['dataset']}: {meta['num_users']} users, "
        f"{meta['num_items']} items, {meta['train_pairs']} train pairs; "
        f"{meta['layers']} layers, d={meta['dim']}, batch "
        f"{meta['batch_size']}, Adam lr {meta['lr']} "
        f"({'fused' if meta['fused_adam'] else 'for-loop'}), L2 "
        f"{meta['reg']}, 1 uniform negative.",
        f"Machine: {meta['cpu_count']} cores ({meta['machine']}), torch "
        f"{meta['torch']}, {meta['threads']} threads; load average "
        f"{meta['load_avg_before'][0]:.1f} before, "
        f"{meta['load_avg_after'][0]:.1f} after (shared machine: timings "
        f"are the minimum over {meta['repeats']} runs of "
        f"{meta['batches']} batches). Measured {meta.get('date', '-')}; "
        'published figure: none (a speed benchmark, PyG\'s LightGCN '
        'measured in the same run).',
        '',
        '| implementation | s / batch | s / epoch (projected) | '
        'peer s/batch / this |',
        '|---|---:|---:|---:|',
    ]
    rows = [('ours (pyg_recsys LightGCN), benchmark loop', ours)]
    if 'ours_cli' in res:
        cli = res['ours_cli']
        rows.append((f"ours through the train command (metrics.json, "
                     f"{cli['steps']} batches/epoch: "
                     f"{', '.join(f'{t:.1f}' for t in cli['epoch_s'])} s)",
                     cli))
    if 'ours_full_propagation' in res:
        rows.append(('ours, full propagation (ablation)',
                     res['ours_full_propagation']))
    for key, name in (('peer_edge_index', 'PyG LightGCN, edge_index'),
                      ('peer_sparse', 'PyG LightGCN, SparseTensor')):
        if key in res:
            rows.append((name, res[key]))
    sparse = res.get('peer_sparse', {}).get('sec_per_batch')
    for name, r in rows:
        ratio = f"{sparse / r['sec_per_batch']:.2f}x" if sparse else '-'
        lines.append(f"| {name} | {r['sec_per_batch']:.4f} | "
                     f"{r['projected_epoch_s']:.1f} | {ratio} |")
    lines += ['']
    for key, name in (('peer_edge_index', 'edge_index peer'),
                      ('peer_sparse', 'SparseTensor peer')):
        if f'ratio_{key}' in res:
            line = (f"- {name} / ours: **{res[f'ratio_{key}']:.2f}x** per "
                    f"batch (and per epoch) in the benchmark loop")
            if f'ratio_cli_{key}' in res:
                line += (f", **{res[f'ratio_cli_{key}']:.2f}x** through "
                         "the train command")
            lines.append(line)
    lines += [
        f"- ours per batch: sampling {ours['sample_s'] * 1e3:.1f} ms, "
        f"forward {ours['forward_s'] * 1e3:.1f} ms, backward "
        f"{ours['backward_s'] * 1e3:.1f} ms, Adam step "
        f"{ours['step_s'] * 1e3:.1f} ms",
        '- sparse products per training step: ' + '; '.join(
            f"{k}: {v['full']} full SpMMs + {v['slice']} row-slice + "
            f"{v['slice_t']} transposed row-slice"
            for k, v in res['spmm_per_step'].items()),
        '',
        '| SpMM backend (A @ X, X: nodes x d) | ms |',
        '|---|---:|',
    ]
    lines += [f'| {k} | {v:.1f} |' for k, v in res['spmm_ms'].items()]
    if 'quality' in res:
        q = res['quality']
        lines += ['', f"## Quality after {meta['epochs']} epoch(s) "
                  '(test, full ranking, train items masked)', '',
                  '| implementation | recall@20 | ndcg@20 | s / epoch |',
                  '|---|---:|---:|---:|',
                  ]
        for key, name in (('ours', 'ours, N(0, 0.1) init'),
                          ('ours_xavier', "ours, PyG's Xavier init")):
            if key in q:
                lines.append(f"| {name} | {q[key]['recall20']:.4f} | "
                             f"{q[key]['ndcg20']:.4f} | "
                             f"{q[key]['mean_epoch_s']:.1f} |")
        if 'peer_sparse' in q:
            ps = q['peer_sparse']
            lines.append(f"| PyG LightGCN, SparseTensor | "
                         f"{ps['recall20']:.4f} | {ps['ndcg20']:.4f} | "
                         f"{ps['projected_epoch_s']:.1f} |")
    return lines


def write(out: Path, stem: str, meta: dict, res: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    record = dict(meta=meta, results=res)
    (out / f'{stem}.json').write_text(json.dumps(record, indent=2) + '\n')
    lines = markdown(record)
    (out / f'{stem}.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
