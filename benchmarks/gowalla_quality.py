"""Quality on the Gowalla LightGCN split against the papers, per model.

Paper protocol (LightGCN, He et al., SIGIR 2020, and NGCF, Wang et al.,
SIGIR 2019, which share this split): train on all of ``train.txt``, rank
all items for every test user with training items masked, K = 20.  The
papers have no validation part and report the test metric at convergence,
so this benchmark does the same and says so: the test part is scored every
``--eval-every`` epochs and both the last and the best value are reported
(the best is selected on test, as in the papers' code, and is labelled as
such).  Models are built by the CLI's name table
(:func:`pyg_recsys.cli.build_model`), so a model's options are the
``pyg-recsys train`` options; pass them after the benchmark's own, e.g.
``--model simgcl --layers 2 --cl-weight 0.5``.

Published figures (recall@20 / ndcg@20): LightGCN 0.1823 / 0.1555 (about
1000 epochs), NGCF 0.1569 / 0.1327 (about 400 epochs).  The SimGCL paper
has no Gowalla figure; it is compared with LightGCN's.

Resumable: checkpoints go to ``--out`` (default ``runs/gowalla_<model>``;
``runs/gowalla_quality`` for LightGCN, where its earlier run lives) each
epoch; run it again with the same arguments to continue (``--epochs`` may
grow between runs).  ``--plot lightgcn ngcf`` draws the saved curves of
those models on the same axes (per epoch and per training hour).

    python benchmarks/gowalla_quality.py --model lightgcn --epochs 100
    python benchmarks/gowalla_quality.py --model ngcf --epochs 20
    python benchmarks/gowalla_quality.py --plot lightgcn ngcf simgcl_lambda0.1
    python benchmarks/gowalla_quality.py --smoke

Writes ``benchmarks/results/gowalla_quality_<model>.{json,md,png}`` and,
with ``--plot``, ``gowalla_quality_curves.png``.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import machine, write_results  # benchmarks/, beside this
from lightgcn_gowalla import write_synthetic

from pyg_recsys import typing as pt
from pyg_recsys.cli import build_loader, build_model, parse_train_args
from pyg_recsys.datasets import LightGCNDataset
from pyg_recsys.train import RankingEvaluator, Trainer, seed_everything

HERE = Path(__file__).resolve().parent
PAPERS = {
    'lightgcn': dict(name='LightGCN paper (3 layers)', epochs='~1000',
                     **{'recall@20': 0.1823, 'ndcg@20': 0.1555}),
    'ngcf': dict(name='NGCF paper (3 layers)', epochs='~400',
                 **{'recall@20': 0.1569, 'ndcg@20': 0.1327}),
}
PAPERS['simgcl'] = dict(PAPERS['lightgcn'],
                        name='LightGCN paper (SimGCL has no Gowalla figure)')


class TestAsValidation:
    """Scores the test part whenever the loop asks for validation (the
    papers' protocol; there is no validation part)."""

    def __init__(self, inner: RankingEvaluator) -> None:
        self.inner = inner

    def __call__(self, model, part):
        return self.inner(model, 'test')


def plot_curves(names: list[str], results: Path, smoke: bool = False,
                out_suffix: str | None = None) -> Path | None:
    """Test recall@20 of the saved runs ``names`` (see ``--name``), per
    epoch and per hour of training, on the same axes; prints one line per
    run.  ``smoke`` reads the short-mode results; ``out_suffix`` (default:
    that of the results read) names the picture."""
    suffix = '_smoke' if smoke else ''
    records = []
    for name in names:
        path = results / f'gowalla_quality_{name}{suffix}.json'
        if not path.exists():
            raise SystemExit(f'gowalla_quality --plot: {path} is missing; '
                             f'run that model (--name {name}) first')
        rec = json.loads(path.read_text())
        records.append((name, rec))
        print(f'{name}: {rec["epochs"]} epochs, last test recall@20 '
              f'{rec["last"]["recall@20"]:.4f}')
    if not pt.WITH_MATPLOTLIB:
        return None
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=120,
                                   sharey=True)
    for name, rec in records:
        curve = rec['curve']
        hours = rec['train_hours_at_epoch']
        ax1.plot([c['epoch'] for c in curve],
                 [c['recall@20'] for c in curve], marker='o', markersize=2,
                 label=name)
        ax2.plot([hours[c['epoch'] - 1] for c in curve],
                 [c['recall@20'] for c in curve], marker='o', markersize=2,
                 label=name)
    paper = PAPERS['lightgcn']['recall@20']
    for ax in (ax1, ax2):
        ax.axhline(paper, ls='--', c='gray', lw=1)
        ax.grid(alpha=0.3)
    ax1.text(1, paper, 'LightGCN paper, ~1000 epochs', va='bottom',
             fontsize=7, color='gray')
    ax1.set_xlabel('epoch')
    ax2.set_xlabel('training hours (2-core CPU)')
    ax1.set_ylabel('test recall@20 (full ranking)')
    ax1.legend()
    fig.suptitle('Gowalla (LightGCN split)', fontsize=9)
    fig.tight_layout()
    out_suffix = suffix if out_suffix is None else out_suffix
    out = results / f'gowalla_quality_curves{out_suffix}.png'
    fig.savefig(out)
    plt.close(fig)
    return out


def markdown(record: dict) -> list[str]:
    """The markdown table of a ``gowalla_quality_<name>.json`` record."""
    last, best, paper = record['last'], record['best'], record['paper']
    mach = record['machine']
    md = [
        f'# {record["name"]} on Gowalla: quality against the paper', '',
        f'Protocol: {record["protocol"]}.', '',
        '| | epochs | recall@20 | ndcg@20 |', '|---|---:|---:|---:|',
        f'| ours, last epoch | {record["last_epoch"]} | '
        f'{last["recall@20"]:.4f} | {last["ndcg@20"]:.4f} |',
        f'| ours, best on test | {record["best_epoch"]} | '
        f'{best["recall@20"]:.4f} | {best["ndcg@20"]:.4f} |',
    ]
    if paper:
        md.append(f'| {paper["name"]} | {paper["epochs"]} | '
                  f'{paper["recall@20"]} | {paper["ndcg@20"]} |')
    md += ['', f'Median training time per epoch: '
           f'{record["median_train_seconds_per_epoch"]:.1f} s '
           f'({mach["cpus"]} cores, {mach["threads"]} '
           f'thread{"s" * (mach["threads"] != 1)}, '
           f'torch {mach["torch"]}).',
           '', f'Recipe: {json.dumps(record["recipe"])}']
    return md


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog='Other options go to the model (pyg-recsys train options).')
    p.add_argument('--model', default='lightgcn')
    p.add_argument('--name', default=None,
                   help='name of this run in file names and plots (default: '
                   'the model; e.g. simgcl_lambda0.1 for a variant)')
    p.add_argument('--epochs', type=int, default=100)
    p.add_argument('--eval-every', type=int, default=5)
    p.add_argument('--root', default=None, help='writable data root')
    p.add_argument('--raw-dir', default=None)
    p.add_argument('--out', type=Path, default=None)
    p.add_argument('--results', type=Path, default=HERE / 'results')
    p.add_argument('--plot', nargs='+', default=None, metavar='NAME',
                   help="only draw the saved curves of these runs (--name)")
    p.add_argument('--smoke', action='store_true',
                   help='synthetic LightGCN-format folder, 2 epochs, then '
                   'the curve plot')
    args, model_argv = p.parse_known_args(argv)
    if args.plot:  # --smoke: the saved runs, drawn to a _smoke picture
        print(plot_curves(args.plot, args.results,
                          out_suffix='_smoke' if args.smoke else ''))
        return {}

    # The model's options, parsed by the CLI so defaults agree with it.
    margs = parse_train_args(['--model', args.model, '--dataset', 'gowalla',
                              '--out', '-', *model_argv])
    name = args.name or args.model
    if args.out is None:
        args.out = Path('runs/gowalla_quality' if name == 'lightgcn'
                        else f'runs/gowalla_{name}')
    if args.smoke:
        tmp = Path(tempfile.mkdtemp())
        raw = tmp / 'raw'
        raw.mkdir()
        write_synthetic(raw, num_users=60, num_items=80, per_user=12)
        args.raw_dir, args.root = str(raw), str(tmp / 'root')
        args.out, args.epochs, args.eval_every = tmp / 'run', 2, 1
        margs.batch_size = 128

    seed_everything(margs.seed)
    ds = LightGCNDataset(root=args.root, name='gowalla', raw_dir=args.raw_dir)
    split = ds.split(val_ratio=0.0)  # all of train.txt, as in the papers
    model = build_model(margs, split)
    loader = build_loader(margs, split, model)
    trainer = Trainer(model, loader,
                      TestAsValidation(RankingEvaluator(split, ks=(20,))),
                      lr=margs.lr, epochs=args.epochs,
                      eval_every=args.eval_every, monitor='recall@20',
                      out_dir=args.out, progress=False)
    result = trainer.fit(resume=True)

    hist = result['epochs']
    evals = [(r['epoch'], r['val']) for r in hist if 'val' in r]
    last_epoch, last = evals[-1]
    train_s = [r['train_seconds'] for r in hist]
    hours, total = [], 0.0
    for s in train_s:
        total += s
        hours.append(total / 3600)
    paper = PAPERS.get(args.model)
    recipe = {k: v for k, v in vars(margs).items()
              if k not in ('func', 'out', 'command', 'quiet', 'debug',
                           'progress',
                           'resume', 'root', 'raw_dir', 'dataset', 'epochs',
                           'eval_every', 'eval_batch_size', 'patience',
                           'monitor', 'ks', 'split_kind')}
    out = dict(
        benchmark=f'{name} quality, Gowalla LightGCN split',
        protocol=('train.txt for training, test.txt scored with training '
                  'items masked; full ranking over all items; K=20; no '
                  'validation part (paper protocol): "best" is selected on '
                  'test, "last" is the final epoch'),
        model=args.model, name=name, recipe=recipe,
        epochs=len(hist), last_epoch=last_epoch, last=last,
        best_epoch=result['best_epoch'], best=result['best_val'],
        paper=paper,
        ratio_to_paper=({k: last[k] / paper[k]
                         for k in ('recall@20', 'ndcg@20')}
                        if paper else None),
        median_train_seconds_per_epoch=sorted(train_s)[len(train_s) // 2],
        train_hours_at_epoch=hours,
        curve=[dict(epoch=e, **v) for e, v in evals],
        machine=machine(), smoke=args.smoke)
    stem = f'gowalla_quality_{name}'
    md = markdown(out)
    write_results(args.results, stem, out, md, args.smoke)
    if pt.WITH_MATPLOTLIB:
        suffix = '_smoke' if args.smoke else ''
        png = plot_curves([name], args.results, smoke=args.smoke)
        png.replace(args.results / f'{stem}{suffix}.png')
    return out


if __name__ == '__main__':
    main()
