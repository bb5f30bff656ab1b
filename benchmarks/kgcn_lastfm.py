"""KGCN on Last.FM: the paper's click-through protocol, and RecBole
1.2.1's KGCN on the same interactions in the same run.

1. Click-through (KGCN's protocol and recipe): the reference's 1:1
   labelled rows and 6:2:2 split (seed 555, ``LastFMKG``), d = 16, H = 1,
   K = 8, sum aggregator, Adam 5e-4, L2 1e-4, batch 128, the last partial
   batch dropped; the epoch selected on validation AUC.  Test AUC / F1
   both over all rows and as the reference reports them (the mean over
   mini-batches of 128, the last partial one dropped), next to the
   published figures, and full-ranking recall / ndcg@20 on the same split.
2. Against RecBole (``../shared/peers/recbole_kg.py``, its own
   environment): positives only (every KG-linked listen), random 8/1/1 per
   user, full ranking with training items masked; both with RecBole's
   KGCN defaults (d = 64, H = 1, K = 4, sum, one uniform negative labelled
   0, batch 4096, Adam 1e-3) for the same number of epochs.  Seconds per
   training epoch, seconds per full evaluation of the test users, test
   recall / ndcg@20 after the last epoch (ours: the split of our
   ``--split random``, RecBole: its own, same protocol).

    python benchmarks/kgcn_lastfm.py
    python benchmarks/kgcn_lastfm.py --peer-epochs 30 --no-click
    python benchmarks/kgcn_lastfm.py --smoke

Writes ``benchmarks/results/kgcn_lastfm.{json,md}``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
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

from pyg_recsys.cli import main as cli  # noqa: E402

PEERS = HERE.parent.parent / 'shared' / 'peers'
RECBOLE = Path(os.environ.get('RECBOLE_VENV', '/tmp/recbole-venv'))
#: published click-through figures (sum aggregator)
PUBLISHED = [('KGCN paper (Wang et al., WWW 2019)', 0.794, 0.719),
             ('OpenHGNN rerun', 0.796, 0.718)]


def run(out: Path, raw: Path | None, *options: str) -> dict:
    argv = ['-q', 'train', '--model', 'kgcn', '--dataset', 'lastfm-kg',
            '--no-progress', '--out', str(out), *options]
    if raw is not None:
        argv += ['--raw-dir', str(raw)]
    cli(argv)
    return json.loads((out / 'metrics.json').read_text())


def click_through(work: Path, raw: Path | None, epochs: int) -> dict:
    m = run(work / 'click', raw, '--dim', '16', '--layers', '1',
            '--kg-neighbors', '8', '--aggregator', 'sum', '--lr', '5e-4',
            '--reg', '1e-4', '--batch-size', '128', '--epochs',
            str(epochs))
    train_s = [e['train_seconds'] for e in m['epochs']]
    return dict(epochs=len(m['epochs']), best_epoch=m['best_epoch'],
                test=m['test'], val=m['best_val'],
                s_per_epoch=sum(train_s) / len(train_s))


def ours_vs_recbole(work: Path, raw: Path | None, epochs: int) -> dict:
    m = run(work / 'random', raw, '--split', 'random', '--dim', '64',
            '--layers', '1', '--kg-neighbors', '4', '--aggregator', 'sum',
            '--lr', '1e-3', '--reg', '1e-7', '--batch-size', '4096',
            '--num-neg', '1', '--epochs', str(epochs), '--eval-every',
            str(epochs))
    train_s = [e['train_seconds'] for e in m['epochs']]
    # one full evaluation of the test users, timed alone (the run's own
    # evaluation also scores the validation users)
    from pyg_recsys.cli.run import load_run
    from pyg_recsys.train import RankingEvaluator
    _, split, model = load_run(work / 'random')
    ev = RankingEvaluator(split, ks=(20,))
    ev(model, 'val')  # warm-up
    t0 = time.perf_counter()
    ev(model, 'test')
    eval_s = time.perf_counter() - t0
    return dict(epochs=len(m['epochs']),
                s_per_epoch=sum(train_s) / len(train_s), eval_s=eval_s,
                recall20=m['test']['recall@20'],
                ndcg20=m['test']['ndcg@20'], split=m['split'])


def recbole(work: Path, raw: Path | None, epochs: int) -> dict:
    python = RECBOLE / 'bin' / 'python'
    script = PEERS / 'recbole_kg.py'
    if not python.exists() or not script.exists():
        return dict(skipped=f'RecBole environment not found ({python}); '
                    f'run bash {PEERS}/recbole_env.sh')
    raw = raw or Path(os.environ.get('PYG_RECSYS_DATA', 'datasets')) \
        / 'lastfm-kgcn' / 'raw'
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
    res = subprocess.run([str(python), str(script), str(raw),
                          str(work / 'recbole'), 'KGCN', str(epochs)],
                         capture_output=True, text=True, env=env,
                         timeout=7200)
    if res.returncode != 0:
        return dict(skipped=f'RecBole failed: {res.stderr[-500:]}')
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--epochs', type=int, default=10,
                   help='click-through epochs (the reference: 10)')
    p.add_argument('--peer-epochs', type=int, default=30,
                   help='epochs of ours and RecBole\'s on the random split')
    p.add_argument('--no-click', action='store_true')
    p.add_argument('--no-peer', action='store_true')
    p.add_argument('--out', type=Path, default=HERE / 'results')
    p.add_argument('--smoke', action='store_true',
                   help='tiny synthetic data, one epoch, no RecBole')
    args = p.parse_args(argv)
    tmp = tempfile.TemporaryDirectory()
    work = Path(tmp.name)
    raw = None
    if args.smoke:
        raw = write_lastfm_smoke(work / 'raw', users=80, items=60,
                                 per_user=10)
        args.epochs = args.peer_epochs = 1
        args.no_peer = True
    record: dict = dict(machine=machine(), smoke=args.smoke)
    if not args.no_click:
        record['click'] = click_through(work, raw, args.epochs)
    record['ours_random'] = ours_vs_recbole(work, raw, args.peer_epochs)
    if not args.no_peer:
        record['recbole'] = recbole(work, raw, args.peer_epochs)
    tmp.cleanup()
    md = ['# KGCN on Last.FM', '', f'Machine: {machine()}.', '']
    c = record.get('click')
    if c:
        t = c['test']
        md += ['Click-through, KGCN\'s protocol and recipe (labelled 1:1 '
               'rows, 6:2:2 split, seed 555; d = 16, H = 1, K = 8, sum; '
               f"selected on validation AUC: epoch {c['best_epoch']} of "
               f"{c['epochs']}):", '',
               '| | test AUC | test F1 | recall@20 | ndcg@20 | s / epoch |',
               '|---|---:|---:|---:|---:|---:|',
               f"| ours, over all rows | {t['auc']:.4f} | {t['f1']:.4f} | "
               f"{t['recall@20']:.4f} | {t['ndcg@20']:.4f} | "
               f"{c['s_per_epoch']:.2f} |",
               f"| ours, mean over batches of 128 (the reference's way) | "
               f"{t.get('auc_batches', float('nan')):.4f} | "
               f"{t.get('f1_batches', float('nan')):.4f} | | | |"]
        md += [f'| {name} | {a:.3f} | {f:.3f} | | | |'
               for name, a, f in PUBLISHED]
    o, r = record['ours_random'], record.get('recbole')
    md += ['', 'Against RecBole 1.2.1, positives only, random 8/1/1 per '
           'user, full ranking, RecBole\'s KGCN defaults (d = 64, H = 1, '
           f"K = 4, batch 4096), {o['epochs']} epochs each:", '',
           '| | s / epoch | s / full evaluation | test recall@20 | '
           'test ndcg@20 |', '|---|---:|---:|---:|---:|',
           f"| ours | {o['s_per_epoch']:.2f} | {o['eval_s']:.2f} | "
           f"{o['recall20']:.4f} | {o['ndcg20']:.4f} |"]
    if r and 'skipped' not in r:
        md.append(f"| RecBole KGCN | {r['epoch_s']:.2f} | {r['eval_s']:.2f} "
                  f"| {r['recall@20']:.4f} | {r['ndcg@20']:.4f} |")
        record['ratio_epoch'] = r['epoch_s'] / o['s_per_epoch']
        record['ratio_eval'] = r['eval_s'] / o['eval_s']
        md += ['', f"Ours is {record['ratio_epoch']:.1f}x faster per "
               f"epoch and {record['ratio_eval']:.1f}x faster per full "
               f'evaluation.']
    elif r:
        md += ['', f"RecBole: {r['skipped']}"]
    write_results(args.out, 'kgcn_lastfm', record, md, smoke=args.smoke)


if __name__ == '__main__':
    main()
