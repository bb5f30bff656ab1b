"""TransE on knowledge-graph completion: filtered MRR / Hits@10 of both
directions next to LibKGE's published figures, and our filtered
evaluation against PyG's ``KGEModel.test()`` on the same model in the
same run.

Each data set trains through ``pyg-recsys train --model transe`` with the
recipe below, in a run folder under ``--runs`` that ``--resume`` continues:
a later call with more ``--epochs`` goes on from where the last one
stopped, and the table names the epochs behind every number.  The model
is selected on validation MRR; test is scored once, at that checkpoint.

Evaluation speed: the selected WN18RR model ranks every test triple's
tail and head among all 40,943 entities, the other known true triples
masked (ours, ``KGEvaluator``), and PyG's ``TransE.test()`` ranks the
tails only, unfiltered, one triple per Python iteration, with the same
weights.  The ratio is per ranked test triple.

    python benchmarks/kg_transe.py
    python benchmarks/kg_transe.py --datasets kinship umls nations
    python benchmarks/kg_transe.py --datasets wn18rr --epochs 40
    python benchmarks/kg_transe.py --smoke

Writes ``benchmarks/results/kg_transe.{json,md}``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import (  # noqa: E402
    keep_other_rows,
    machine,
    resumed_run,
    write_results,
)

from pyg_recsys.datasets import KGCompletionDataset  # noqa: E402
from pyg_recsys.nn.models import TransE  # noqa: E402
from pyg_recsys.train import KGEvaluator  # noqa: E402

#: dataset -> the options of its recipe (LibKGE's best TransE: reciprocal
#: relations, L2 distance, softmax cross-entropy over sampled negatives;
#: here negatives shared by each batch, see the README)
RECIPES = {
    'kinship': dict(epochs=200, dim=128, lr=3e-3, batch=512, neg=256),
    'umls': dict(epochs=200, dim=128, lr=3e-3, batch=512, neg=128),
    'nations': dict(epochs=200, dim=64, lr=3e-3, batch=128, neg=14),
    'wn18rr': dict(epochs=60, dim=256, lr=1e-3, batch=1024, neg=512),
    'fb15k-237': dict(epochs=60, dim=128, lr=1e-3, batch=1024, neg=512),
}
#: published filtered MRR / Hits@10 (both directions) of TransE
PUBLISHED = {'wn18rr': ('LibKGE (Ruffinelli et al., ICLR 2020)', 0.228,
                        0.520),
             'fb15k-237': ('LibKGE (Ruffinelli et al., ICLR 2020)', 0.313,
                           0.497)}


def write_smoke_data(folder: Path) -> Path:
    gen = torch.Generator().manual_seed(0)
    folder.mkdir(parents=True)
    for part, n in (('train', 400), ('valid', 40), ('test', 40)):
        h, r, t = (torch.randint(0, m, (n,), generator=gen).tolist()
                   for m in (50, 4, 50))
        (folder / f'{part}.txt').write_text(''.join(
            f'e{a}\tr{b}\te{c}\n' for a, b, c in zip(h, r, t)))
    return folder


def train(name: str, recipe: dict, runs: Path, epochs: int | None,
          raw_dir: Path | None) -> dict:
    out = runs / f'transe-{name}'
    argv = ['-q', 'train', '--model', 'transe', '--dataset', name,
            '--reciprocal', '--p-norm', '2', '--kg-loss', 'ce',
            '--neg', 'shared', '--num-neg', str(recipe['neg']),
            '--dim', str(recipe['dim']), '--lr', str(recipe['lr']),
            '--batch-size', str(recipe['batch']),
            '--epochs', str(epochs or recipe['epochs']),
            '--eval-every', str(recipe.get('eval_every', 5)),
            '--patience', '10', '--no-progress', '--out', str(out)]
    t0 = time.perf_counter()
    m = resumed_run(argv, out, raw_dir)
    seconds = time.perf_counter() - t0
    epochs_done = len(m['epochs'])
    train_s = [e['train_seconds'] for e in m['epochs']]
    return dict(dataset=name, recipe=recipe, run=str(out),
                epochs=epochs_done, best_epoch=m['best_epoch'],
                stopped_early=epochs_done < (epochs or recipe['epochs']),
                test=m['test'], val=m['best_val'],
                s_per_epoch=sum(train_s) / len(train_s),
                wall_seconds_this_call=seconds)


def load_model(run: Path, split) -> TransE:
    cfg = json.loads((run / 'config.json').read_text())
    model = TransE(split.num_entities, split.num_relations, cfg['dim'],
                   p_norm=cfg['p_norm'], reciprocal=cfg['reciprocal'])
    state = torch.load(run / 'best.pt', weights_only=True)['model']
    model.load_state_dict(state)
    return model.eval()


def eval_speed(run: Path, name: str, raw_dir: Path | None,
               pyg_triples: int | None) -> dict:
    from torch_geometric.nn.kge import TransE as PyGTransE
    ds = KGCompletionDataset(name=name, raw_dir=None if raw_dir is None
                             else str(raw_dir))
    split = ds.split()
    model = load_model(run, split)
    ev = KGEvaluator(split, ks=(1, 3, 10))
    ev(model, 'val')  # warm-up (caches the filter index)
    t0 = time.perf_counter()
    ours = ev(model, 'test')
    ours_s = time.perf_counter() - t0
    n = split.test.size(1)
    peer = PyGTransE(split.num_entities, split.num_relations,
                     model.embedding_dim, p_norm=model.p_norm)
    peer.node_emb.weight.data.copy_(model.entity.weight.data)
    peer.rel_emb.weight.data.copy_(
        model.relation.weight.data[:split.num_relations])
    k = n if pyg_triples is None else min(n, pyg_triples)
    h, r, t = split.test[:, :k]
    t0 = time.perf_counter()
    _, pyg_mrr, pyg_hits = peer.test(h, r, t, batch_size=20000, k=10,
                                     log=False)
    pyg_s = time.perf_counter() - t0
    return dict(dataset=name, test_triples=n,
                ours_seconds=ours_s, ours_per_triple=ours_s / n,
                ours_work='heads and tails, filtered',
                ours_mrr=ours['mrr'], pyg_triples=k, pyg_seconds=pyg_s,
                pyg_per_triple=pyg_s / k,
                pyg_work='tails only, unfiltered',
                pyg_mrr_tail_raw=float(pyg_mrr),
                pyg_hits10_tail_raw=float(pyg_hits),
                ratio_per_triple=(pyg_s / k) / (ours_s / n))


def negatives_speed(name: str, recipe: dict, raw_dir: Path | None,
                    batches: int) -> dict:
    """Seconds per training step (forward, backward, Adam) with the
    recipe's negatives drawn per triple (``[B, N]`` gathered rows) and
    shared by the batch (one ``[B, N]`` distance matrix)."""
    from pyg_recsys.data.loader import TripleLoader
    from pyg_recsys.train import adam
    split = KGCompletionDataset(name=name, raw_dir=None if raw_dir is None
                                else str(raw_dir)).split()
    out = dict(dataset=name, batch=recipe['batch'], num_neg=recipe['neg'],
               dim=recipe['dim'])
    for shared in (False, True):
        torch.manual_seed(0)
        model = TransE(split.num_entities, split.num_relations,
                       recipe['dim'], p_norm=2, reciprocal=True)
        opt = adam(model.parameters(), lr=1e-3)
        loader = TripleLoader(split.train, split.num_entities,
                              batch_size=recipe['batch'],
                              num_neg=recipe['neg'], shared=shared)
        times = []
        for i, batch in enumerate(loader):
            if i > batches:
                break
            t0 = time.perf_counter()
            opt.zero_grad()
            model.loss(batch).backward()
            opt.step()
            if i:  # the first step warms up
                times.append(time.perf_counter() - t0)
        out['shared' if shared else 'per_triple'] = sum(times) / len(times)
    out['ratio'] = out['per_triple'] / out['shared']
    return out


def markdown(record: dict) -> list[str]:
    """The markdown tables of a ``kg_transe.json`` record (the
    published figures from :data:`PUBLISHED`)."""
    md = ['# TransE, knowledge-graph completion', '',
          f"Protocol: {record['protocol']}. Recipe: reciprocal relations, "
          f'L2 distance, softmax cross-entropy over uniform negatives '
          f'shared by each batch (`--neg shared`), Adam; the options per '
          f"data set are in the JSON. Machine: {record['machine']}.",
          '',
          '| data set | epochs (best) | s / epoch | test MRR | Hits@1 | '
          'Hits@10 | published MRR / Hits@10 | measured |',
          '|---|---:|---:|---:|---:|---:|---|---|']
    for r in record['rows']:
        pub = PUBLISHED.get(r['dataset'])
        ref = f'{pub[1]:.3f} / {pub[2]:.3f} ({pub[0]})' if pub else '-'
        md.append(f"| {r['dataset']} | {r['epochs']} ({r['best_epoch']}) "
                  f"| {r['s_per_epoch']:.2f} | {r['test']['mrr']:.4f} | "
                  f"{r['test']['hits@1']:.4f} | {r['test']['hits@10']:.4f} "
                  f"| {ref} | {r.get('measured', '-')} |")
    speed, neg = record['eval_speed'], record['negatives_speed']
    if speed:
        md += ['', f"Evaluation of the {speed['test_triples']} "
               f"{speed['dataset']} test triples, same weights: ours "
               f"{speed['ours_seconds']:.2f} s ({speed['ours_work']}; "
               f"{1e3 * speed['ours_per_triple']:.3f} ms per triple), "
               f"PyG `TransE.test()` {speed['pyg_seconds']:.1f} s for "
               f"{speed['pyg_triples']} triples ({speed['pyg_work']}; "
               f"{1e3 * speed['pyg_per_triple']:.2f} ms per triple): "
               f"**{speed['ratio_per_triple']:.0f}x** per ranked triple."]
    if neg:
        md += ['', f"Training step on {neg['dataset']} (batch "
               f"{neg['batch']}, {neg['num_neg']} negative heads and tails, "
               f"d = {neg['dim']}): negatives per triple "
               f"{neg['per_triple']:.3f} s, shared by the batch "
               f"{neg['shared']:.3f} s ({neg['ratio']:.1f}x)."]
    return md


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--datasets', nargs='+', default=list(RECIPES),
                   choices=list(RECIPES))
    p.add_argument('--epochs', type=int, default=None,
                   help='train each run up to this many epochs in all '
                   '(default: the recipe\'s)')
    p.add_argument('--runs', type=Path, default=HERE.parent / 'runs'
                   / 'bench', help='run folders (resumed when present)')
    p.add_argument('--pyg-triples', type=int, default=None,
                   help='test triples PyG\'s test() ranks (default all)')
    p.add_argument('--out', type=Path, default=HERE / 'results')
    p.add_argument('--smoke', action='store_true',
                   help='tiny synthetic data, two epochs')
    args = p.parse_args(argv)
    tmp = tempfile.TemporaryDirectory()
    raw = None
    datasets = args.datasets
    if args.smoke:
        raw = write_smoke_data(Path(tmp.name) / 'raw')
        args.runs = Path(tmp.name) / 'runs'
        datasets = ['kinship']
        RECIPES['kinship'] = dict(epochs=2, dim=8, lr=1e-2, batch=64,
                                  neg=16, eval_every=1)
    rows = [train(name, RECIPES[name], args.runs, args.epochs, raw)
            for name in datasets]
    speed = None
    speed_set = 'kinship' if args.smoke else 'wn18rr'
    if speed_set in datasets:
        speed = eval_speed(args.runs / f'transe-{speed_set}', speed_set,
                           raw, args.pyg_triples)
    neg = None
    if speed_set in datasets:
        neg = negatives_speed(speed_set, RECIPES[speed_set], raw,
                              2 if args.smoke else 10)
    tmp.cleanup()
    for row in rows:
        row['measured'] = time.strftime('%Y-%m-%d')
    previous = args.out / 'kg_transe.json'
    if not args.smoke and previous.exists():
        # the other data sets' rows, and the speed figures not redone
        order = list(RECIPES)
        rows = sorted(keep_other_rows(previous, rows,
                                      lambda r: r['dataset']),
                      key=lambda r: order.index(r['dataset']))
        old = json.loads(previous.read_text())
        speed = speed or old.get('eval_speed')
        neg = neg or old.get('negatives_speed')
    record = dict(machine=machine(), smoke=args.smoke, rows=rows,
                  eval_speed=speed, negatives_speed=neg,
                  protocol='filtered ranking of heads and tails among all '
                           'entities, the other known true triples (train, '
                           'valid, test) masked, ties at their rounded mean '
                           'rank; model selected on validation MRR; test '
                           'triples with entities unseen in training '
                           'included')
    md = markdown(record)
    write_results(args.out, 'kg_transe', record, md, smoke=args.smoke)


if __name__ == '__main__':
    main()
