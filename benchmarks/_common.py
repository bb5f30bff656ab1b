"""Pieces every benchmark script shares: the machine record and writing
the JSON + markdown result pair (a module, not a benchmark: the smoke test
skips files starting with an underscore)."""
from __future__ import annotations

import io
import json
import os
import platform
import zipfile
from pathlib import Path

import torch

from pyg_recsys.io import atomic_write_text


def machine() -> dict:
    """Where a figure was measured: cores, threads, torch, CPU type."""
    return dict(cpus=os.cpu_count(), torch=torch.__version__,
                threads=torch.get_num_threads(),
                platform=platform.machine())


def write_results(folder: Path, stem: str, record: dict, md: list[str],
                  smoke: bool = False) -> None:
    """Writes ``<stem>.json`` and ``<stem>.md`` (``<stem>_smoke.*`` for a
    smoke run) into ``folder`` atomically and prints the markdown."""
    stem += '_smoke' if smoke else ''
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(record, indent=2), folder / f'{stem}.json')
    atomic_write_text('\n'.join(md) + '\n', folder / f'{stem}.md')
    print('\n'.join(md))


def write_lastfm_smoke(folder: Path, users: int = 60, items: int = 40,
                       per_user: int = 8) -> Path:
    """KGCN-format Last.FM files (``user_artists.dat``, ``kg.txt``,
    ``item_index2entity_id.txt``) with a small synthetic knowledge graph
    of two relations, for the benchmarks' ``--smoke`` runs."""
    gen = torch.Generator().manual_seed(0)
    folder.mkdir(parents=True)
    with open(folder / 'user_artists.dat', 'w') as f:
        f.write('userID\tartistID\tweight\n')
        for u in range(users):
            for a in torch.randperm(items, generator=gen)[:per_user]:
                f.write(f'{u}\t{int(a)}\t{int(a) + 1}\n')
    with open(folder / 'item_index2entity_id.txt', 'w') as f:
        f.writelines(f'{a}\t{a}\n' for a in range(items))
    with open(folder / 'kg.txt', 'w') as f:
        for a in range(items):
            f.write(f'{a}\tgenre\t{items + a % 7}\n')
            f.write(f'{a}\tlabel\t{items + 7 + a % 3}\n')
    return folder


def write_social_smoke(folder: Path, users: int = 60, items: int = 50,
                       name: str = 'ciao') -> Path:
    """A Ciao-format ``<name>.zip`` (``rating.mat``, ``trustnetwork.mat``)
    of two taste groups: a user rates the items of its group high, the
    others low; trust links stay within groups."""
    import numpy as np
    import scipy.io
    rng = np.random.default_rng(0)
    rows = []
    for u in range(1, users + 1):
        for i in rng.choice(items, size=12, replace=False) + 1:
            r = 5 if (u % 2) == (i % 2) else 1
            rows.append([u, i, 1, min(5, max(1, r + rng.integers(-1, 2))),
                         0])
    trust = [[u, v] for u in range(1, users + 1)
             for v in rng.choice(users, size=4) + 1 if (u % 2) == (v % 2)
             and u != v]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f'{name}.zip'
    with zipfile.ZipFile(path, 'w') as zf:
        for file, field, value in (('rating.mat', 'rating', rows),
                                   ('trustnetwork.mat', 'trustnetwork',
                                    trust)):
            buf = io.BytesIO()
            scipy.io.savemat(buf, {field: np.array(value)})
            zf.writestr(f'{name}/{file}', buf.getvalue())
    return folder
