import os

import pytest
import torch

from pyg_recsys import io as io_mod
from pyg_recsys.io import atomic_save, atomic_write, atomic_write_text


def test_atomic_save_keeps_old_file_on_error(tmp_path, monkeypatch):
    path = str(tmp_path / 'out' / 'x.pt')
    atomic_save({'a': 1}, path)

    def broken_save(obj, f):
        f.write(b'half')
        raise RuntimeError('disk full')
    monkeypatch.setattr(io_mod.torch, 'save', broken_save)
    with pytest.raises(RuntimeError, match='disk full'):
        atomic_save({'a': 2}, path)
    monkeypatch.undo()
    assert torch.load(path) == {'a': 1}
    assert os.listdir(tmp_path / 'out') == ['x.pt']
    with atomic_write(str(tmp_path / 'out' / 'y.bin')) as f:
        f.write(b'ok')
    assert (tmp_path / 'out' / 'y.bin').read_bytes() == b'ok'


def test_atomic_save_of_unpicklable_object_leaves_nothing(tmp_path):
    class Boom:
        def __reduce__(self):
            raise RuntimeError('cannot pickle')

    with pytest.raises(RuntimeError, match='cannot pickle'):
        atomic_save({'a': Boom()}, tmp_path / 'x.pt')
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_text(tmp_path):
    atomic_write_text('é\n', tmp_path / 'sub' / 'a.json')
    assert (tmp_path / 'sub' / 'a.json').read_text(encoding='utf-8') == 'é\n'
