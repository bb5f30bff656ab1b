"""Choosing a device, and the one switch between host-synchronising and
synchronisation-free kernels.

On a CPU, reading a tensor's value from Python (``int(t)``, ``t.item()``,
a Python ``if`` on a tensor) and operators with data-dependent output sizes
(``torch.unique``, ``nonzero``, boolean indexing) cost nothing extra.  On
a GPU each one waits for every queued kernel to finish: the host stops
feeding the device, and a training step of many small kernels becomes
launch-bound.  Where an operator has a faster CPU form that needs such a
value (LightGCN's row-sliced last layer, which needs the size of the row
slice), it asks :func:`sync_free` which form to run, so both forms are
selected in one place and a test can run the device form on the CPU.
"""
from __future__ import annotations

import torch


def resolve_device(device: torch.device | str | None) -> torch.device:
    """The device a spec names: ``'auto'`` (or ``None``) is the first CUDA
    device when one is available and the CPU otherwise; ``'cpu'``,
    ``'cuda'`` and ``'cuda:N'`` are checked against what this machine
    has."""
    if device is None or device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        out = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a device name; use "
                         f"'auto', 'cpu', 'cuda' or 'cuda:N'") from err
    if out.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f"device '{device}': this machine has no CUDA "
                             f"device (torch {torch.__version__}); use "
                             f"'cpu' or 'auto'")
        count = torch.cuda.device_count()
        if out.index is not None and out.index >= count:
            raise ValueError(f"device '{device}': this machine has {count} "
                             f"CUDA device(s), cuda:0 to cuda:{count - 1}")
    elif out.type != 'cpu':
        raise ValueError(f"device '{device}': only 'cpu' and 'cuda' "
                         f"devices are supported")
    return out


def dist_info() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: ``(0, 1)`` unless a
    ``torch.distributed`` process group is initialised (``torchrun``)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum of ``value`` over the processes of the default group (a
    copy of ``value`` when there is one process), on ``value``'s device;
    the exchange goes through the device the backend needs (CUDA for
    NCCL)."""
    import torch.distributed as dist
    if dist_info()[1] == 1:
        return value.clone()
    where = (torch.device('cuda', torch.cuda.current_device())
             if dist.get_backend() == 'nccl' else torch.device('cpu'))
    buf = value.to(where, copy=True)
    dist.all_reduce(buf)
    return buf.to(value.device)


def keep_freed_memory(trim_threshold: int = 1 << 30,
                      mmap_threshold: int = 1 << 28) -> bool:
    """Asks glibc's allocator to keep freed memory in the process instead
    of handing it back to the system after every large free.

    A training step allocates and frees tensors of tens of megabytes (the
    ``[nodes, d]`` products of a graph model); with glibc's defaults each
    of them is returned to the system and faulted in again, page by page,
    in the next step, which costs a sizeable part of a CPU epoch in system
    time.  With these thresholds blocks below ``mmap_threshold`` come from
    the heap and the heap keeps up to ``trim_threshold`` free bytes.  The
    ``pyg-recsys`` command calls it; a library user may.  Returns whether
    the setting took effect (only with glibc).
    """
    import ctypes
    import ctypes.util
    import platform
    if platform.system() != 'Linux':
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(mallopt(m_trim_threshold, int(trim_threshold))
                and mallopt(m_mmap_threshold, int(mmap_threshold)))


def sync_free(device: torch.device) -> bool:
    """Whether operators on ``device`` should take their form that never
    waits for the device (every device but the CPU)."""
    return device.type != 'cpu'


__all__ = ['all_reduce_sum', 'dist_info', 'keep_freed_memory',
           'resolve_device', 'sync_free']
