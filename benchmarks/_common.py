"""Pieces every benchmark script shares: the machine record and writing
the JSON + markdown result pair (a module, not a benchmark: the smoke test
skips files starting with an underscore)."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

from pyg_recsys.io import atomic_write_text


def machine() -> dict:
    """Where a figure was measured: cores, threads, torch, CPU type."""
    return dict(cpus=os.cpu_count(), torch=torch.__version__,
                threads=torch.get_num_threads(),
                platform=platform.machine())


def resumed_run(argv: list[str], out: Path,
                raw: Path | None = None) -> dict:
    """Runs ``pyg-recsys <argv>`` into the run folder ``out`` (with
    ``--raw-dir raw`` when given, resumed when ``out`` holds a run) and
    returns its ``metrics.json``."""
    from pyg_recsys.cli import main as cli
    argv = list(argv)
    if raw is not None:
        argv += ['--raw-dir', str(raw)]
    if (out / 'last.pt').exists():
        argv.append('--resume')
    cli(argv)
    return json.loads((out / 'metrics.json').read_text())


def keep_other_rows(previous: Path, rows: list[dict], key) -> list[dict]:
    """``rows`` after the rows of the results file ``previous`` that this
    run did not redo (``key(row)`` names a row), so a run over some data
    sets leaves the others' figures (each row names its day)."""
    if not previous.exists():
        return rows
    done = {key(r) for r in rows}
    return [r for r in json.loads(previous.read_text()).get('rows', [])
            if key(r) not in done] + rows


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
