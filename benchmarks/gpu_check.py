"""Every model on a GPU: one or two epochs and a full-ranking evaluation
each, PyG's LightGCN in the same run, and the host synchronisations left
in a training step.

Each model is built exactly as ``pyg-recsys train`` builds it (the CLI's
name table, data loading, split, loader and evaluator; its default
options) and trained with :class:`pyg_recsys.train.Trainer` on
``--device``: ranking models on Gowalla (the LightGCN split, 10% of each
user's training items held out for validation, as the CLI does), session
models on Amazon Beauty (S3Rec's file, leave-one-out), TransE on WN18RR,
KGCN and KGAT on Last.FM (KGCN's files and split), GraphRec and biased MF
on Ciao (80 / 10 / 10 over all ratings).  Per model: seconds of each
training epoch (the device synchronised before the clock stops) and of
each validation pass (all users with validation items, training items
masked, all metrics at K = 10, 20; for TransE, filtered ranking of the
validation triples' heads and tails).  Then five recommendations in raw
ids from the trained model on the device, the way ``pyg-recsys serve``
asks (a user; a two-item session for next-item models).

PyG's ``torch_geometric.nn.models.LightGCN`` trains one epoch on the whole
Gowalla training file the way its example does (full propagation per BPR
mini-batch of 2048, uniform negatives, Adam), with ``edge_index`` and with
a torch sparse CSR adjacency, in the same process.

Synchronisation: one training step of each model (batch to the device,
loss, backward, optimizer step) runs under
``torch.cuda.set_sync_debug_mode('warn')``; every warning is a place
where the host waited for the device.  On a CPU the same step of the
device code path (``ops.device.sync_free`` forced on) runs under
:class:`pyg_recsys.testing.SyncRecorder` instead.

Needs torch and torch_geometric only (no torch-scatter, torch-sparse or
ogb); on the GPU machine run it from the checkout with ``PYTHONPATH=.``.

    python benchmarks/gpu_check.py                  # staged data, cuda
    python benchmarks/gpu_check.py --device cpu --smoke   # tiny data (CI)

Writes ``benchmarks/results/gpu_check.{json,md}`` (``gpu_check_smoke.*``
with ``--smoke``).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout, on a bare machine
sys.path.insert(0, str(HERE))

from _common import (  # noqa: E402
    machine,
    write_lastfm_smoke,
    write_results,
)

from pyg_recsys.cli.options import build_parser  # noqa: E402
from pyg_recsys.cli.run import (  # noqa: E402
    build_model,
    check_options,
    load_data,
)
from pyg_recsys.cli.table import (  # noqa: E402
    CLICK,
    KG,
    MODELS,
    NEXT_ITEM,
    RATING,
)
from pyg_recsys.cli.tasks import DRIVERS  # noqa: E402
from pyg_recsys.ops import device as ops_device  # noqa: E402
from pyg_recsys.ops.device import (  # noqa: E402
    keep_freed_memory,
    resolve_device,
)
from pyg_recsys.testing import write_social_zip  # noqa: E402
from pyg_recsys.train import Trainer, _to_device, adam  # noqa: E402

RANKING_DATA = ('gowalla', 'gowalla-lightgcn')
SESSION_DATA = ('beauty', 'beauty-s3rec')
KG_DATA = ('wn18rr', 'wn18rr')
CLICK_DATA = ('lastfm-kg', 'lastfm-kgcn')
RATING_DATA = ('ciao', 'ciao')


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------
# data for --smoke: LightGCN- and S3Rec-format files
def write_smoke_data(folder: Path) -> dict[str, Path]:
    gen = torch.Generator().manual_seed(0)
    gow = folder / 'gowalla'
    gow.mkdir(parents=True)
    with open(gow / 'train.txt', 'w') as tr, \
            open(gow / 'test.txt', 'w') as te:
        for u in range(200):
            items = torch.randperm(300, generator=gen)[:15].tolist()
            tr.write(' '.join(map(str, [u, *items[:12]])) + '\n')
            te.write(' '.join(map(str, [u, *items[12:]])) + '\n')
    beauty = folder / 'beauty'
    beauty.mkdir()
    with open(beauty / 'Beauty.txt', 'w') as f:
        for u in range(150):
            n = int(torch.randint(4, 10, (1,), generator=gen))
            seq = torch.randint(1, 40, (n,), generator=gen).tolist()
            f.write(' '.join(map(str, [u + 1, *seq])) + '\n')
    kg = folder / 'wn18rr'
    kg.mkdir()
    for part, n in (('train', 600), ('valid', 60), ('test', 60)):
        h = torch.randint(0, 80, (n,), generator=gen).tolist()
        r = torch.randint(0, 5, (n,), generator=gen).tolist()
        t = torch.randint(0, 80, (n,), generator=gen).tolist()
        with open(kg / f'{part}.txt', 'w') as f:
            f.writelines(f'e{a}\tr{b}\te{c}\n' for a, b, c in zip(h, r, t))
    lastfm = write_lastfm_smoke(folder / 'lastfm', items=50)
    ciao = write_social_zip(folder / 'ciao')
    return {'gowalla': gow, 'beauty': beauty, 'wn18rr': kg,
            'lastfm-kg': lastfm, 'ciao': ciao}


# ----------------------------------------------------------------------
# one model
def build(model: str, raw: dict[str, Path], out: Path, device: str,
          smoke: bool):
    """(args, data, model, loader, evaluator) as ``pyg-recsys train``
    makes them."""
    spec = MODELS[model]
    dataset = {NEXT_ITEM: SESSION_DATA, KG: KG_DATA, CLICK: CLICK_DATA,
               RATING: RATING_DATA}.get(spec.task, RANKING_DATA)[0]
    if spec.kg:  # a ranking model over a knowledge graph (KGAT)
        dataset = CLICK_DATA[0]
    argv = ['--model', model, '--dataset', dataset, '--device', device,
            '--out', str(out / model), '--no-progress']
    if raw.get(dataset) is not None:
        argv += ['--raw-dir', str(raw[dataset])]
    if smoke:
        argv += ['--dim', '8', '--batch-size', '64']
    args = build_parser().parse_args(['train', *argv])
    check_options(args)  # and fills in the defaults
    data = load_data(args)
    net = build_model(args, data)
    driver = DRIVERS[spec.task]
    driver.prepare(data, args, net)
    loader = driver.loader(data, args, net)
    evaluator = driver.evaluator(data, args)
    return args, data, net, loader, evaluator


def serve_check(args, data: dict, model: torch.nn.Module,
                device: torch.device) -> str:
    """Five recommendations in raw ids from the trained model on its
    device, as ``pyg-recsys serve`` asks for them
    (:class:`pyg_recsys.cli.runs.LoadedRun`): a user, or a session of two
    items for next-item models."""
    from pyg_recsys.cli.runs import LoadedRun, raw_ids
    task = MODELS[args.model].task
    if task == KG:
        return '-'
    ids = raw_ids(data)
    run = LoadedRun(path=Path(args.out), model=model, task=task, config={},
                    args=args, split=data.get('split'), data=data,
                    ids=ids, device=device)
    model.eval()
    if task == NEXT_ITEM:
        recs = run.recommend(session=list(ids['item'][:2]), k=5)
    else:
        recs = run.recommend(user=ids['user'][0], k=5)
    return f'{len(recs)} items'


def time_model(name: str, raw, out: Path, device: torch.device,
               epochs: int, smoke: bool) -> dict:
    args, data, model, loader, evaluator = build(name, raw, out,
                                                 str(device), smoke)
    model.to(device)
    trainer = Trainer(model, loader, evaluator,
                      optimizer=adam(model.parameters(), lr=args.lr,
                                     weight_decay=args.weight_decay),
                      epochs=epochs, progress=False, device=device,
                      monitor=args.monitor)
    row = dict(model=name, dataset=args.dataset, steps=len(loader),
               epoch_s=[], eval_s=[], loss=[])
    for epoch in range(1, epochs + 1):
        trainer.epoch = epoch
        sync(device)
        t0 = time.perf_counter()
        row['loss'].append(trainer.train_epoch())
        sync(device)
        row['epoch_s'].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        val = evaluator(model, 'val')
        sync(device)
        row['eval_s'].append(time.perf_counter() - t0)
        row['val'] = {k: val[k] for k in (args.monitor, 'recall@20',
                                          'ndcg@20', 'hits@10', 'auc',
                                          'mae')
                      if k in val}
    row['sync'] = sync_points(trainer, loader, device)
    try:
        row['serve'] = serve_check(args, data, model, device)
    except Exception as e:  # reported in its column, the run goes on
        row['serve'] = f'failed: {type(e).__name__}: {e}'[:200]
    return row


def sync_points(trainer: Trainer, loader, device: torch.device
                ) -> list[str]:
    """Places where one training step waits for the device (a step of
    every objective, for a model with several loaders)."""
    model = trainer.model
    model.train()
    loaders = loader if isinstance(loader, Mapping) else {None: loader}
    batches = {}
    for name, one in loaders.items():
        if hasattr(one, 'set_epoch'):
            one.set_epoch(99)
        batches[name] = next(iter(one))

    def losses():
        for name, batch in batches.items():
            b = _to_device(batch, device)
            yield model.loss(b) if name is None else model.loss(b, name)

    def step():
        for loss in losses():
            trainer.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            trainer.optimizer.step()

    step()  # warm-up (lazy state, first-call allocations)
    if device.type == 'cuda':
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            torch.cuda.set_sync_debug_mode('warn')
            try:
                step()
            finally:
                torch.cuda.set_sync_debug_mode(0)
        places = [f'{Path(w.filename).name}:{w.lineno}' for w in caught
                  if 'synchroniz' in str(w.message)]
        return list(dict.fromkeys(places))
    from pyg_recsys.testing import SyncRecorder
    free = ops_device.sync_free
    ops_device.sync_free = lambda d: True  # the device code path
    try:
        # (the optimizer reads its CPU step counter, not a device value)
        trainer.optimizer.zero_grad(set_to_none=True)
        with SyncRecorder() as rec:
            for loss in losses():
                loss.backward()
    finally:
        ops_device.sync_free = free
    return rec.places()


# ----------------------------------------------------------------------
# the peer: PyG's LightGCN as its example trains it
def pyg_epoch(folder: Path, adj_kind: str, device: torch.device,
              batch_size: int, dim: int = 64) -> dict:
    from torch_geometric.nn.models import LightGCN

    from pyg_recsys.datasets.lightgcn import read_lightgcn
    tu, ti = (torch.from_numpy(a) for a in
              read_lightgcn(str(folder / 'train.txt')))
    su, si = (torch.from_numpy(a) for a in
              read_lightgcn(str(folder / 'test.txt')))
    nu = int(max(tu.max(), su.max())) + 1
    ni = int(max(ti.max(), si.max())) + 1
    n = nu + ni
    ei = torch.stack([torch.cat([tu, ti + nu]), torch.cat([ti + nu, tu])])
    adj = ei
    if adj_kind == 'csr':
        adj = torch.sparse_coo_tensor(ei.flip(0), torch.ones(ei.size(1)),
                                      (n, n)).coalesce().to_sparse_csr()
    adj = adj.to(device)
    tu, ti = tu.to(device), ti.to(device)
    torch.manual_seed(0)
    model = LightGCN(n, dim, 3).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    E = tu.numel()
    steps = -(-E // batch_size)
    sync(device)
    t0 = time.perf_counter()
    perm = torch.randperm(E, device=device)
    for b in range(steps):
        idx = perm[b * batch_size:(b + 1) * batch_size]
        u, pos = tu[idx], ti[idx] + nu
        neg = torch.randint(0, ni, (idx.numel(),), device=device) + nu
        eli = torch.stack([torch.cat([u, u]), torch.cat([pos, neg])])
        pr, nr = model(adj, eli).chunk(2)
        loss = model.recommendation_loss(pr, nr, node_id=eli.unique())
        opt.zero_grad()
        loss.backward()
        opt.step()
    sync(device)
    return dict(model=f'PyG LightGCN ({adj_kind})', dataset='gowalla',
                steps=steps, epoch_s=[time.perf_counter() - t0],
                eval_s=[], sync=None)


# ----------------------------------------------------------------------
def markdown(record: dict) -> list[str]:
    """The markdown table of a ``gpu_check.json`` record."""
    data = ('synthetic smoke data' if record['smoke'] else
            'Gowalla (ranking models, CLI split), Beauty (session '
            'models), WN18RR (TransE) and Last.FM (KGCN, KGAT)')
    md = [f"# GPU check: every model on `{record['device']}` "
          f"({record['gpu']})", '',
          f"torch {record['machine']['torch']}, torch_geometric "
          f"{record['torch_geometric']}; {data}; default CLI options; "
          f"{record['epochs']} epoch(s) per model, the "
          f'last one reported (the first includes warm-up); evaluation: '
          f'all validation users, full ranking, training items masked, '
          f'6 metrics at K = 10, 20. Whole run: '
          f"{record['seconds']:.0f} s.", '',
          '| model | data | steps | s / epoch | eval s | step waits for '
          'the host at | recommend on the device |',
          '|---|---|---:|---:|---:|---|---|']
    for r in record['rows']:
        waits = ('-' if r['sync'] is None else
                 'nowhere' if not r['sync'] else '; '.join(r['sync'][:4])
                 + (f' (+{len(r["sync"]) - 4})' if len(r['sync']) > 4
                    else ''))
        ev = f"{r['eval_s'][-1]:.3f}" if r['eval_s'] else '-'
        md.append(f"| {r['model']} | {r['dataset']} | {r['steps']} | "
                  f"{r['epoch_s'][-1]:.3f} | {ev} | {waits} | "
                  f"{r.get('serve', '-')} |")
    for name, err in record['failed'].items():
        md.append(f'| {name} | failed: {err.strip()[:200]} | | | | | |')
    if record['device'] == 'cpu':
        md += ['', 'On a CPU the last column lists the operators of the '
               'device code path that would wait on a GPU '
               '(`testing.SyncRecorder`).']
    return md


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default='auto')
    p.add_argument('--models', nargs='+', default=sorted(MODELS),
                   choices=sorted(MODELS))
    p.add_argument('--epochs', type=int, default=2,
                   help='epochs per model (the first includes warm-up)')
    p.add_argument('--no-peers', action='store_true')
    p.add_argument('--out', type=Path, default=HERE / 'results')
    p.add_argument('--smoke', action='store_true',
                   help='tiny synthetic data, one epoch (CI, on a CPU)')
    args = p.parse_args(argv)
    warnings.filterwarnings('ignore', message='Sparse (CSR tensor support|'
                            'invariant checks)')
    device = resolve_device(args.device)
    keep_freed_memory()  # as pyg-recsys train does
    tmp = tempfile.TemporaryDirectory()
    work = Path(tmp.name)
    if args.smoke:
        raw = write_smoke_data(work / 'raw')
        args.epochs = 1
    else:
        raw = {}
    rows, failed = [], {}
    t_all = time.perf_counter()
    for name in args.models:
        t0 = time.perf_counter()
        try:
            row = time_model(name, raw, work / 'runs', device, args.epochs,
                             args.smoke)
        except Exception as e:  # report it, go on with the others
            failed[name] = ''.join(traceback.format_exception_only(e))
            print(f'{name}: FAILED {failed[name].strip()}', flush=True)
            continue
        row['total_s'] = time.perf_counter() - t0
        rows.append(row)
        print(f"{name}: epochs {[round(t, 3) for t in row['epoch_s']]} s, "
              f"eval {[round(t, 3) for t in row['eval_s']]} s, "
              f"sync points {len(row['sync'])}", flush=True)
    if not args.no_peers:
        from pyg_recsys.datasets.lightgcn import LightGCNDataset
        folder = raw.get('gowalla') or Path(
            LightGCNDataset('gowalla').raw_dir)
        for kind in ('edge_index', 'csr'):
            try:
                row = pyg_epoch(folder, kind, device,
                                64 if args.smoke else 2048,
                                8 if args.smoke else 64)
            except Exception as e:
                failed[f'pyg-{kind}'] = ''.join(
                    traceback.format_exception_only(e))
                continue
            rows.append(row)
            print(f"{row['model']}: epoch {row['epoch_s'][0]:.3f} s",
                  flush=True)
    tmp.cleanup()
    gpu = (torch.cuda.get_device_name(device) if device.type == 'cuda'
           else 'none')
    record = dict(device=str(device), gpu=gpu, machine=machine(),
                  torch_geometric=__import__('torch_geometric').__version__,
                  epochs=args.epochs, smoke=args.smoke, rows=rows,
                  failed=failed, seconds=time.perf_counter() - t_all)
    md = markdown(record)
    write_results(args.out, 'gpu_check', record, md, smoke=args.smoke)
    if failed:
        raise SystemExit(f'gpu_check: {len(failed)} failed: '
                         f'{sorted(failed)}')


if __name__ == '__main__':
    main()
