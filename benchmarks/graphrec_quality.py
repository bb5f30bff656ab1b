"""GraphRec on Ciao and Epinions next to biased MF and GraphRec without
its social aggregation, same split and budget.

Protocol (GraphRec's): a random split of all ratings, ``x``% for training
(80 or 60) and the rest halved into validation and test; MAE / RMSE of
the test ratings at the epoch of the lowest validation RMSE (the
reference code selects its epoch on the test set; we do not).  Every
model trains through ``pyg-recsys train`` on the same split (seed 0),
Adam, batch 512, for ``--epochs`` epochs:

* ``biasedmf`` (mu + b_u + b_i + p_u q_i, L2 0.5 per pair);
* ``graphrec --no-social`` (the paper's GraphRec-SN: item aggregation and
  user aggregation only; does trust help?);
* ``graphrec`` (item, social and user aggregation, fan-outs 20/10/20).

Run folders under ``--runs`` resume: a later call with more ``--epochs``
goes on where the last stopped.

    python benchmarks/graphrec_quality.py
    python benchmarks/graphrec_quality.py --sets ciao:0.8 ciao:0.6 --epochs 10
    python benchmarks/graphrec_quality.py --smoke

Writes ``benchmarks/results/graphrec_quality.{json,md}``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import (  # noqa: E402
    keep_other_rows,
    machine,
    resumed_run,
    write_results,
)

from pyg_recsys.testing import write_social_zip  # noqa: E402

#: row name -> (model, extra options)
ROWS = {'biased MF': ('biasedmf', ['--reg', '0.5']),
        'GraphRec-SN (no social)': ('graphrec', ['--no-social']),
        'GraphRec': ('graphrec', [])}
#: (data set, training ratio) -> the paper's GraphRec MAE / RMSE
PUBLISHED = {('ciao', 0.8): (0.7387, 0.9794), ('ciao', 0.6): (0.7540, 1.0093),
             ('epinions', 0.8): (0.8168, 1.0631),
             ('epinions', 0.6): (0.8441, 1.0878)}


def run(row: str, dataset: str, ratio: float, args: argparse.Namespace,
        raw: Path | None) -> dict:
    model, extra = ROWS[row]
    rest = round((1 - ratio) / 2, 6)
    tag = row.split(' ')[0].replace('-', '')
    out = args.runs / f'{dataset}-{int(ratio * 100)}-{tag}'
    argv = ['-q', 'train', '--model', model, '--dataset', dataset,
            '--split-ratios', str(ratio), str(rest), str(rest),
            '--epochs', str(args.epochs), '--eval-every', '1',
            '--batch-size', '512', '--lr', '1e-3', '--no-progress',
            '--out', str(out), *extra]
    t0 = time.perf_counter()
    m = resumed_run(argv, out, raw)
    train_s = [e['train_seconds'] for e in m['epochs']]
    eval_s = [e['eval_seconds'] for e in m['epochs'] if 'eval_seconds' in e]
    return dict(row=row, dataset=dataset, train_ratio=ratio,
                epochs=len(m['epochs']), best_epoch=m['best_epoch'],
                test=m['test'], val=m['best_val'],
                s_per_epoch=sum(train_s) / len(train_s),
                s_per_eval=sum(eval_s) / max(len(eval_s), 1),
                wall_seconds_this_call=time.perf_counter() - t0,
                measured=time.strftime('%Y-%m-%d'))


def markdown(record: dict) -> list[str]:
    """The markdown table of a ``graphrec_quality.json`` record (the
    paper's figures from :data:`PUBLISHED`)."""
    md = ['# GraphRec: rating prediction with a trust network', '',
          f"Protocol: {record['protocol']}. Adam 1e-3, batch 512, d = 64, "
          'the same epochs for every model. Machine: '
          f"{record['machine']}.", '',
          '| data set | training | model | epochs (best) | s / epoch | '
          'test MAE | test RMSE | paper\'s GraphRec MAE / RMSE | measured |',
          '|---|---:|---|---:|---:|---:|---:|---|---|']
    for r in record['rows']:
        pub = PUBLISHED.get((r['dataset'], r['train_ratio']))
        ref = (f'{pub[0]:.4f} / {pub[1]:.4f}'
               if pub and r['row'] == 'GraphRec' else '')
        md.append(f"| {r['dataset']} | {r['train_ratio']:.0%} | {r['row']} "
                  f"| {r['epochs']} ({r['best_epoch']}) | "
                  f"{r['s_per_epoch']:.1f} | {r['test']['mae']:.4f} | "
                  f"{r['test']['rmse']:.4f} | {ref} | {r['measured']} |")
    return md


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--sets', nargs='+', default=['ciao:0.8'],
                   help='data set:training ratio pairs (ciao:0.8 ciao:0.6 '
                   'epinions:0.8 ...)')
    p.add_argument('--epochs', type=int, default=10)
    p.add_argument('--runs', type=Path, default=HERE.parent / 'runs'
                   / 'bench', help='run folders (resumed when present)')
    p.add_argument('--out', type=Path, default=HERE / 'results')
    p.add_argument('--smoke', action='store_true',
                   help='tiny synthetic data, two epochs')
    args = p.parse_args(argv)
    tmp = tempfile.TemporaryDirectory()
    raw = None
    sets = [(s.split(':')[0], float(s.split(':')[1])) for s in args.sets]
    if args.smoke:
        raw = write_social_zip(Path(tmp.name) / 'raw')
        args.runs = Path(tmp.name) / 'runs'
        args.epochs = 2
        sets = [('ciao', 0.8)]
    rows = [run(row, ds, ratio, args, raw) for ds, ratio in sets
            for row in ROWS]
    tmp.cleanup()
    if not args.smoke:  # rows of other data sets / ratios stay
        rows = keep_other_rows(args.out / 'graphrec_quality.json', rows,
                               lambda r: (r['dataset'], r['train_ratio']))
    record = dict(machine=machine(), smoke=args.smoke, rows=rows,
                  protocol='random split of all ratings (seed 0): training '
                           'ratio x, validation and test (1 - x) / 2 each; '
                           'MAE / RMSE of every test rating at the epoch of '
                           'the lowest validation RMSE')
    md = markdown(record)
    write_results(args.out, 'graphrec_quality', record, md,
                  smoke=args.smoke)


if __name__ == '__main__':
    main()
