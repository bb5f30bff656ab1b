"""Atomic file writes: a crash never leaves a half-written file behind.

Used for processed datasets, checkpoints and run records alike.
"""
from __future__ import annotations

import contextlib
import os
import os.path as osp
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO

import torch


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Opens a temporary file next to ``path`` for binary writing; on
    success it is flushed to disk and :func:`os.replace`-d onto ``path``,
    on any error removed, so ``path`` is never left half-written."""
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.tmp-{uuid.uuid4().hex}-{osp.basename(path)}')
    try:
        with open(tmp, 'xb') as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """:func:`torch.save` through :func:`atomic_write`."""
    with atomic_write(path) as f:
        torch.save(obj, f)


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Writes UTF-8 ``text`` through :func:`atomic_write`."""
    with atomic_write(path) as f:
        f.write(text.encode('utf-8'))
