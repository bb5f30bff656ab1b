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


def write_results(folder: Path, stem: str, record: dict, md: list[str],
                  smoke: bool = False) -> None:
    """Writes ``<stem>.json`` and ``<stem>.md`` (``<stem>_smoke.*`` for a
    smoke run) into ``folder`` atomically and prints the markdown."""
    stem += '_smoke' if smoke else ''
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(record, indent=2), folder / f'{stem}.json')
    atomic_write_text('\n'.join(md) + '\n', folder / f'{stem}.md')
    print('\n'.join(md))
