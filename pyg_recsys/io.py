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

#: Name prefix of the temporary files of :func:`atomic_write`.
TMP_PREFIX = '.tmp-'


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Opens a temporary file next to ``path`` for binary writing; on
    success it is flushed to disk and :func:`os.replace`-d onto ``path``,
    on any error removed, so ``path`` is never left half-written."""
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder,
                   f'{TMP_PREFIX}{uuid.uuid4().hex}-{osp.basename(path)}')
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


def remove_orphans(folder: str | os.PathLike) -> list[str]:
    """Removes the temporary files :func:`atomic_write` leaves in
    ``folder`` when its process is killed mid-write (``.tmp-*``); call it
    while holding the folder's :func:`folder_lock`, so no live writer's
    file goes.  Returns the names removed."""
    folder = os.fspath(folder)
    if not osp.isdir(folder):
        return []
    removed = []
    for name in os.listdir(folder):
        if name.startswith(TMP_PREFIX):
            with contextlib.suppress(OSError):
                os.remove(osp.join(folder, name))
                removed.append(name)
    return removed


class LockedError(RuntimeError):
    """Another process holds the lock of a folder."""


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, blocking: bool = True,
                what: str = 'folder') -> Iterator[None]:
    """Holds an exclusive lock on ``folder/.lock`` (``fcntl.flock``; the
    operating system drops it when the process ends, even when killed).

    Args:
        folder: The folder (created if missing).
        blocking: Wait for the lock; ``False`` raises :class:`LockedError`
            at once when another process holds it.
        what: What the folder is, for the error message.
    """
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking
        yield
        return
    with open(osp.join(folder, '.lock'), 'a+') as f:
        flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(f.fileno(), flags)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip()
            pid = f' (pid {owner})' if owner else ''
            raise LockedError(
                f'{folder}: another process{pid} is using this {what}; '
                f'wait for it to finish or choose another one') from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def fingerprint(paths: list[str | os.PathLike], extra: Any = None) -> str:
    """A short hex digest of the contents of ``paths`` (in order, with
    their base names) and of ``repr(extra)`` (options): the key of a
    cache built from those files."""
    import hashlib
    digest = hashlib.sha256(repr(extra).encode())
    for path in paths:
        digest.update(osp.basename(os.fspath(path)).encode() + b'\0')
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
    return digest.hexdigest()[:16]


def numpy_safe_globals() -> list[Any]:
    """The NumPy objects a pickled array needs (array, dtype, the
    reconstructor under both NumPy 1 and 2 names), allow-listed for a
    ``weights_only`` :func:`torch.load`: arrays load, code does not run."""
    import numpy as np
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy 1.x
        from numpy.core.multiarray import _reconstruct
    out: list[Any] = [np.ndarray, np.dtype]
    out += [(_reconstruct, f'{mod}.multiarray._reconstruct')
            for mod in ('numpy.core', 'numpy._core')]
    out += [type(np.dtype(t)) for t in (np.int64, np.int32, np.uint32,
                                        np.float32, np.float64, np.bool_)]
    return out


class DamagedFileError(ValueError):
    """A file this package wrote cannot be read back."""


class BadDataError(ValueError):
    """A data file or table the package cannot read: the message names the
    file or column, the line or row and the problem.

    A :class:`ValueError`, so ``except ValueError`` (and the command line's
    one-line report of user errors) keeps working; the readers raise it
    instead of the raw errors of :func:`int`, NumPy, :mod:`pickle` or
    :mod:`scipy.io` on malformed input.
    """


def safe_load(path: str | os.PathLike, what: str, fix: str,
              map_location: Any = 'cpu') -> Any:
    """:func:`torch.load` with ``weights_only=True`` (a crafted file cannot
    run code; NumPy arrays are allowed, :func:`numpy_safe_globals`); a
    file that does not load raises :class:`DamagedFileError` in one line
    naming it, what it is and ``fix`` (what to do).

    Args:
        path: The file.
        what: What it is (``'checkpoint'``, ``'processed file'`` ...).
        fix: What the user should do, e.g. ``'delete it to rebuild it'``.
        map_location: As in :func:`torch.load`; by default tensors come to
            the CPU, so a run saved on a GPU loads anywhere
            (``load_state_dict`` moves them to the parameters' device).
    """
    path = os.fspath(path)
    try:
        with torch.serialization.safe_globals(numpy_safe_globals()):
            return torch.load(path, weights_only=True,
                              map_location=map_location)
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - any damage or foreign content
        reason = (str(e).strip().splitlines() or [''])[0][:160]
        raise DamagedFileError(
            f'{path}: the {what} is damaged or not one this package wrote '
            f'({type(e).__name__}: {reason}); {fix}') from None


__all__ = ['TMP_PREFIX', 'atomic_write', 'atomic_save', 'atomic_write_text',
           'remove_orphans', 'LockedError', 'folder_lock', 'fingerprint',
           'numpy_safe_globals', 'DamagedFileError', 'BadDataError',
           'safe_load']
