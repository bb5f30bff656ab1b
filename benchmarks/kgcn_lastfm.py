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
   0, batch 4096, Adam 1e-3) for the same number of epochs, on the same
   split: for each seed RecBole splits (``--seed=N`` to the peer), its
   parts are written out (``_recbole_split.py``, in RecBole's environment)
   and ours trains on them (``--split-file``).  Seconds per training
   epoch, seconds per full evaluation of the test users, test recall /
   ndcg@20 after the last epoch, per seed and their mean.  (RecBole's
   split rounds the held-out counts down, ours half up: on our own
   ``--split random`` a user keeps fewer training items, and recall is
   not comparable across the two.)  Without RecBole's environment, ours
   runs on ``--split random`` alone.

    python benchmarks/kgcn_lastfm.py
    python benchmarks/kgcn_lastfm.py --peer-epochs 30 --no-click
    python benchmarks/kgcn_lastfm.py --no-click --seeds 2020 1 2 3 4
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


def ours(work: Path, raw: Path | None, epochs: int,
         split: tuple[str, ...]) -> dict:
    m = run(work, raw, *split, '--dim', '64', '--layers', '1',
            '--kg-neighbors', '4', '--aggregator', 'sum', '--lr', '1e-3',
            '--reg', '1e-7', '--batch-size', '4096', '--num-neg', '1',
            '--epochs', str(epochs), '--eval-every', str(epochs))
    train_s = [e['train_seconds'] for e in m['epochs']]
    # one full evaluation of the test users, timed alone (the run's own
    # evaluation also scores the validation users)
    from pyg_recsys.cli.serve import load_run_parts
    from pyg_recsys.train import RankingEvaluator
    _, data, model = load_run_parts(work)
    ev = RankingEvaluator(data, ks=(20,))
    ev(model, 'val')  # warm-up
    t0 = time.perf_counter()
    ev(model, 'test')
    eval_s = time.perf_counter() - t0
    return dict(epochs=len(m['epochs']),
                s_per_epoch=sum(train_s) / len(train_s), eval_s=eval_s,
                recall20=m['test']['recall@20'],
                ndcg20=m['test']['ndcg@20'], split=m['split'])


def recbole_env() -> str | None:
    """Why RecBole cannot run here, or ``None``."""
    if not (RECBOLE / 'bin' / 'python').exists() or \
            not (PEERS / 'recbole_kg.py').exists():
        return (f'RecBole environment not found ({RECBOLE}/bin/python); '
                f'run bash {PEERS}/recbole_env.sh')
    return None


def recbole(work: Path, raw: Path | None, epochs: int, seed: int) -> dict:
    """RecBole's KGCN on its split of ``seed``, and that split written to
    ``work / 'split.tsv'``."""
    python = str(RECBOLE / 'bin' / 'python')
    raw = raw or Path(os.environ.get('PYG_RECSYS_DATA', 'datasets')) \
        / 'lastfm-kgcn' / 'raw'
    raw = raw.resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
    res = subprocess.run([python, str(PEERS / 'recbole_kg.py'), str(raw),
                          str(work), 'KGCN', str(epochs), f'--seed={seed}'],
                         capture_output=True, text=True, env=env,
                         timeout=7200, cwd=work)  # (its logs land there)
    if res.returncode != 0:
        raise RuntimeError(f'RecBole failed: {res.stderr[-1500:]}')
    out = json.loads(res.stdout.strip().splitlines()[-1])
    res = subprocess.run([python, str(HERE / '_recbole_split.py'), str(work),
                          str(seed), str(work / 'split.tsv')],
                         capture_output=True, text=True, env=env,
                         timeout=3600, cwd=work)
    if res.returncode != 0:
        raise RuntimeError(f'writing RecBole\'s split failed: '
                           f'{res.stderr[-1500:]}')
    return out


def ours_vs_recbole(work: Path, raw: Path | None, epochs: int,
                    seeds: list[int], peer: bool) -> dict:
    why = None if peer else 'not asked for (--no-peer or --smoke)'
    why = why or recbole_env()
    if why:
        o = ours(work / 'random', raw, epochs, ('--split', 'random'))
        return dict(skipped=why, rows=[dict(seed=0, ours=o)])
    rows = []
    for seed in seeds:
        r = recbole(work / f'recbole-{seed}', raw, epochs, seed)
        o = ours(work / f'ours-{seed}', raw, epochs,
                 ('--split-file', str(work / f'recbole-{seed}'
                                      / 'split.tsv')))
        rows.append(dict(seed=seed, ours=o, recbole=r))
        print(f"seed {seed}: recall@20 ours {o['recall20']:.4f}, RecBole "
              f"{r['recall@20']:.4f}", flush=True)
    mean = {key: sum(f(r) for r in rows) / len(rows) for key, f in dict(
        ours_recall20=lambda r: r['ours']['recall20'],
        ours_ndcg20=lambda r: r['ours']['ndcg20'],
        recbole_recall20=lambda r: r['recbole']['recall@20'],
        recbole_ndcg20=lambda r: r['recbole']['ndcg@20'],
        ours_epoch_s=lambda r: r['ours']['s_per_epoch'],
        ours_eval_s=lambda r: r['ours']['eval_s'],
        recbole_epoch_s=lambda r: r['recbole']['epoch_s'],
        recbole_eval_s=lambda r: r['recbole']['eval_s']).items()}
    return dict(rows=rows, mean=mean,
                ratio_epoch=mean['recbole_epoch_s'] / mean['ours_epoch_s'],
                ratio_eval=mean['recbole_eval_s'] / mean['ours_eval_s'])


def markdown(record: dict) -> list[str]:
    """The markdown tables of a ``kgcn_lastfm.json`` record (the
    published figures from :data:`PUBLISHED`)."""
    md = ['# KGCN on Last.FM', '', f"Machine: {record['machine']}.", '']
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
    v = record['vs_recbole']
    first = v['rows'][0]['ours']
    md += ['', 'Against RecBole 1.2.1, positives only, random 8/1/1 per '
           'user (RecBole\'s split of each seed, ours trained on the same '
           'parts), full ranking with training items masked, RecBole\'s '
           'KGCN defaults (d = 64, H = 1, K = 4, batch 4096, one negative), '
           f"{first['epochs']} epochs each, the last epoch's model:", '',
           '| split seed | ours s / epoch | RecBole s / epoch | ours s / '
           'full evaluation | RecBole s / full evaluation | ours recall@20 '
           '| RecBole recall@20 | ours ndcg@20 | RecBole ndcg@20 |',
           '|---|---:|---:|---:|---:|---:|---:|---:|---:|']
    for row in v['rows']:
        o, r = row['ours'], row.get('recbole')
        if r is None:
            md.append(f"| ours' random {row['seed']} | {o['s_per_epoch']:.2f}"
                      f" | | {o['eval_s']:.2f} | | {o['recall20']:.4f} | | "
                      f"{o['ndcg20']:.4f} | |")
            continue
        md.append(f"| {row['seed']} | {o['s_per_epoch']:.2f} | "
                  f"{r['epoch_s']:.2f} | {o['eval_s']:.2f} | "
                  f"{r['eval_s']:.2f} | {o['recall20']:.4f} | "
                  f"{r['recall@20']:.4f} | {o['ndcg20']:.4f} | "
                  f"{r['ndcg@20']:.4f} |")
    if 'mean' in v:
        m = v['mean']
        md += [f"| mean | {m['ours_epoch_s']:.2f} | {m['recbole_epoch_s']:.2f}"
               f" | {m['ours_eval_s']:.2f} | {m['recbole_eval_s']:.2f} | "
               f"{m['ours_recall20']:.4f} | {m['recbole_recall20']:.4f} | "
               f"{m['ours_ndcg20']:.4f} | {m['recbole_ndcg20']:.4f} |", '',
               f"Ours is {v['ratio_epoch']:.1f}x faster per epoch and "
               f"{v['ratio_eval']:.1f}x faster per full evaluation (means "
               f'over the seeds; RecBole prints its times to 0.1 s).']
    else:
        md += ['', f"RecBole: {v['skipped']}"]
    return md


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--epochs', type=int, default=10,
                   help='click-through epochs (the reference: 10)')
    p.add_argument('--peer-epochs', type=int, default=30,
                   help='epochs of ours and RecBole\'s on the random split')
    p.add_argument('--seeds', type=int, nargs='+', default=[2020, 1, 2],
                   help='RecBole split seeds (2020: its default)')
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
    record['vs_recbole'] = ours_vs_recbole(
        work, raw, args.peer_epochs, args.seeds, not args.no_peer)
    tmp.cleanup()
    md = markdown(record)
    write_results(args.out, 'kgcn_lastfm', record, md, smoke=args.smoke)


if __name__ == '__main__':
    main()
