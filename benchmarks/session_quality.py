"""Next-item quality of SR-GNN, TAGNN, GRU4Rec and SASRec against the
published figures, on the SR-GNN session sets and the per-user sequence
sets, every run through ``pyg-recsys train``.

Protocol, named in every row of the output:

* SR-GNN pickles (``yoochoose1_64``, ``tmall``, ``nowplaying``,
  ``diginetica``): the published prefix examples; 10% of the training
  examples (seeded) held out for validation, the model selected on
  validation HitRate@20; the test pickle scored once, full ranking over all
  items, nothing masked.  HitRate@20 is the papers' "P@20".  SR-GNN's and
  TAGNN's published figures were taken at the best *test* epoch of their
  code (no validation), which favours them.  Yoochoose 1/64 test examples
  whose label never occurs in training (498 of 55,898) are dropped here;
  the ``/paper n`` columns rescale to the paper's denominator counting them
  as misses.
* Per-user sequences (``beauty``, ``sports``, ``toys``, ``yelp-s3rec``,
  ``lastfm-s3rec``, ``amazon-games``): leave-one-out, full ranking over all
  items; ``amazon-games`` also with SASRec's 100 sampled negatives
  (labelled ``sampled100``), the protocol of its published HR@10 / NDCG@10.

Recipes (the papers' where they give one): SR-GNN and TAGNN d = 100,
batch 100, Adam lr 1e-3 with weight decay 1e-5, the rate divided by 10
every 3 epochs, one graph step; GRU4Rec and SASRec on the session sets the
same sizes and batch; on the sequence sets RecBole's defaults (d 64, batch
256, CE, max length 50, one example per prefix); SASRec on Amazon Games as
its paper (d 50, 2 blocks, 1 head, dropout 0.5, batch 128, max length 50,
BCE with one negative, one example per user sequence).  Epoch budgets are
far below the papers' on this 2-core CPU and are printed with every row.

Runs live in ``runs/session_quality/<dataset>/<model>``; running the same
command again resumes them (``--epochs`` may grow).

    python benchmarks/session_quality.py --dataset yoochoose1_64 --epochs 3
    python benchmarks/session_quality.py --dataset amazon-games \\
        --models sasrec --epochs 30
    python benchmarks/session_quality.py --table   # collect every run
    python benchmarks/session_quality.py --smoke

Writes ``benchmarks/results/session_quality.{json,md}``.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import machine, write_results  # benchmarks/, beside this

HERE = Path(__file__).resolve().parent
RUNS = HERE.parent / 'runs' / 'session_quality'
SRGNN_SETS = ('yoochoose1_64', 'tmall', 'nowplaying', 'diginetica')
SESSION = ['--dim', '100', '--batch-size', '100', '--lr', '1e-3',
           '--weight-decay', '1e-5', '--lr-step', '3', '--max-len', '0']
SEQUENCE = ['--dim', '64', '--batch-size', '256', '--lr', '1e-3',
            '--max-len', '50']
RECIPES: dict[str, list[str]] = {
    'srgnn': ['--steps', '1'],
    'tagnn': ['--steps', '1'],
    'gru4rec': ['--hidden', '100'],
    'sasrec': ['--blocks', '2', '--heads', '2', '--dropout', '0.2'],
}
# SASRec paper, Amazon Games: d 50, 2 blocks, 1 head, dropout 0.5, BCE
AMAZON_GAMES = {
    'sasrec': ['--dim', '50', '--blocks', '2', '--heads', '1',
               '--dropout', '0.5', '--batch-size', '128', '--lr', '1e-3',
               '--max-len', '50', '--loss', 'bce'],
    'sasrec-ce': ['--dim', '50', '--blocks', '2', '--heads', '1',
                  '--dropout', '0.5', '--batch-size', '128', '--lr', '1e-3',
                  '--max-len', '50', '--loss', 'ce'],
}
# Published figures: (source, {metric: value}); hit@20 is "P@20" (in %).
PUBLISHED = {
    ('yoochoose1_64', 'srgnn'): ('SR-GNN paper (AAAI 2019), best test '
                                 'epoch', {'hit@20': 70.57, 'mrr@20': 30.94}),
    ('yoochoose1_64', 'tagnn'): ('TAGNN paper (SIGIR 2020), best test '
                                 'epoch', {'hit@20': 71.02, 'mrr@20': 31.12}),
    ('amazon-games', 'sasrec'): ('SASRec paper (ICDM 2018), 100 sampled '
                                 'negatives', {'sampled100_hit@10': 0.7410,
                                               'sampled100_ndcg@10': 0.5360}),
}


def cli_args(dataset: str, model: str) -> list[str]:
    """``pyg-recsys train`` options of a (dataset, model) run."""
    if dataset == 'amazon-games' and model in AMAZON_GAMES:
        return ['--model', 'sasrec', *AMAZON_GAMES[model],
                '--sampled-negatives', '100', '--monitor', 'ndcg@10']
    base = SESSION if dataset in SRGNN_SETS else SEQUENCE
    extra = RECIPES[model]
    if dataset not in SRGNN_SETS and model == 'gru4rec':
        extra = ['--hidden', '128']
    if dataset not in SRGNN_SETS and model == 'sasrec':
        extra = ['--blocks', '2', '--heads', '2', '--dropout', '0.5']
    if dataset not in SRGNN_SETS:
        # one example per prefix, as RecBole (benchmarks/
        # session_speed_beauty.py): after few epochs it scores higher than
        # one example per sequence, which takes ~6x fewer steps per epoch
        extra = [*extra, '--train-mode', 'prefix']
    monitor = 'hit@20' if dataset in SRGNN_SETS else 'ndcg@10'
    return ['--model', model, *base, *extra, '--monitor', monitor]


def run(dataset: str, model: str, epochs: int, raw_dir: str | None,
        runs: Path, eval_every: int) -> Path:
    out = runs / dataset / model
    cmd = [sys.executable, '-m', 'pyg_recsys.cli', 'train', '--dataset',
           dataset, '--epochs', str(epochs), '--eval-every',
           str(eval_every), '--out', str(out), '--no-progress',
           *cli_args(dataset, model)]
    if raw_dir:
        cmd += ['--raw-dir', raw_dir]
    if (out / 'config.json').exists():
        cmd.append('--resume')
    print('$', ' '.join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True)
    return out


def _finished(out: Path) -> bool:
    """A run whose final ``metrics.json`` is written (the trainer's
    per-epoch record of a run still going has no ``task``)."""
    path = out / 'metrics.json'
    return path.exists() and 'task' in json.loads(path.read_text())


def row(out: Path) -> dict:
    result = json.loads((out / 'metrics.json').read_text())
    config = json.loads((out / 'config.json').read_text())
    dataset, name = out.parent.name, out.name
    task = result['task']
    test = dict(result['test'])
    if task.get('num_test_raw') and task['num_test_raw'] != task['num_test']:
        scale = task['num_test'] / task['num_test_raw']
        for k in ('hit@20', 'mrr@20'):
            test[f'{k} /paper n'] = test[k] * scale
    secs = [e['train_seconds'] for e in result['epochs']]
    return dict(dataset=dataset, model=name, epochs=len(result['epochs']),
                best_epoch=result['best_epoch'], test=test,
                train_s_per_epoch=sum(secs) / len(secs),
                protocol=result['protocol'], task=task,
                options=config, published=PUBLISHED.get((dataset, name)))


def _percent(v: float) -> str:
    return f'{100 * v:.2f}'


def _fraction(v: float) -> str:
    return f'{v:.4f}'


def markdown(record: dict) -> list[str]:
    """The markdown table of a ``session_quality.json`` record (each row
    carries its published figure, from :data:`PUBLISHED`)."""
    md = ['# Next-item quality against the published figures', '',
          'Full ranking over all items, nothing masked; model selected on '
          'validation (SR-GNN sets: random 10% of training examples; '
          'sequence sets: leave-one-out). Percentages for SR-GNN sets, '
          f"as the papers. Machine: {record['machine']}.", '',
          '| dataset | model | epochs (best) | HR@10 | HR@20 (P@20) | '
          'MRR@20 | NDCG@10 | s/epoch | published |',
          '|---|---|---:|---:|---:|---:|---:|---:|---|']
    for r in record['rows']:
        t = r['test']
        fmt = _percent if r['dataset'] in SRGNN_SETS else _fraction
        hit20 = fmt(t['hit@20'])
        mrr20 = fmt(t['mrr@20'])
        if 'hit@20 /paper n' in t:
            hit20 += f' ({fmt(t["hit@20 /paper n"])})'
            mrr20 += f' ({fmt(t["mrr@20 /paper n"])})'
        pub = ''
        if r['published']:
            src, vals = r['published']
            pub = src + ': ' + ', '.join(f'{k} {v}' for k, v in vals.items())
        md.append(f"| {r['dataset']} | {r['model']} | {r['epochs']} "
                  f"({r['best_epoch']}) | {fmt(t['hit@10'])} | {hit20} | "
                  f"{mrr20} | {fmt(t['ndcg@10'])} | "
                  f"{r['train_s_per_epoch']:.0f} | {pub} |")
        sampled = {k: v for k, v in t.items() if k.startswith('sampled')}
        if sampled:
            md.append(f"| {r['dataset']} | {r['model']}, 100 sampled "
                      f"negatives | | {sampled['sampled100_hit@10']:.4f} | "
                      f"{sampled['sampled100_hit@20']:.4f} | "
                      f"{sampled['sampled100_mrr@20']:.4f} | "
                      f"{sampled['sampled100_ndcg@10']:.4f} | | (sampled "
                      f"protocol) |")
    md += ['', '`( )`: rescaled to the published test count, dropped '
           'examples counted as misses.']
    return md


def write_smoke_data(folder: Path) -> str:
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)

    def examples(n):
        seqs, ys = [], []
        for _ in range(n):
            s = [rng.randint(1, 30) for _ in range(rng.randint(1, 6))]
            seqs.append(s)
            ys.append(rng.randint(1, 30))
        return seqs, ys
    for name, n in (('train.txt', 300), ('test.txt', 60)):
        with open(folder / name, 'wb') as f:
            pickle.dump(examples(n), f)
    return str(folder)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dataset', default=None)
    p.add_argument('--models', nargs='+',
                   default=['srgnn', 'tagnn', 'gru4rec', 'sasrec'])
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--eval-every', type=int, default=1)
    p.add_argument('--raw-dir', default=None)
    p.add_argument('--runs', type=Path, default=RUNS)
    p.add_argument('--table', action='store_true',
                   help='only collect the finished runs into the table')
    p.add_argument('--smoke', action='store_true')
    args = p.parse_args()
    if args.smoke:
        tmp = Path(tempfile.mkdtemp(prefix='session_quality_'))
        args.raw_dir = write_smoke_data(tmp / 'raw')
        args.dataset, args.epochs, args.runs = 'yoochoose1_64', 1, tmp
    if args.dataset and not args.table:
        for model in args.models:
            run(args.dataset, model, args.epochs, args.raw_dir, args.runs,
                args.eval_every)
    rows = [row(out) for out in sorted(args.runs.glob('*/*'))
            if _finished(out)]
    record = dict(machine=machine(),
                  threads=os.environ.get('OMP_NUM_THREADS'), rows=rows)
    write_results(HERE / 'results', 'session_quality', record,
                  markdown(record), smoke=args.smoke)


if __name__ == '__main__':
    main()
