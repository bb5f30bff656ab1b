"""Several processes (``torchrun``, gloo on the CPU): the same global
batches give the same training and the same metrics as one process."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pyg_recsys.testing import ddp_fit

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'datasets'
ML = SHARED / 'movielens-100k' / 'raw'
pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(),
    reason='torch.distributed is not available in this torch build')


def _torchrun(args, cwd, nproc=2, timeout=120):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYG_RECSYS_DATA=str(SHARED))
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
           f'--nproc_per_node={nproc}', *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize('kind', ['lightgcn', 'sasrec'])
def test_two_processes_match_one(kind, tmp_path):
    _torchrun(['-m', 'pyg_recsys.testing', kind, str(tmp_path / 'two.json')],
              cwd=tmp_path)
    two = json.loads((tmp_path / 'two.json').read_text())
    one = ddp_fit(kind)
    assert two['world_size'] == 2 and one['world_size'] == 1
    assert two['losses'] == pytest.approx(one['losses'], rel=1e-5)
    for part in ('best_val', 'test'):
        assert set(two[part]) == set(one[part])
        for key, value in one[part].items():
            assert two[part][key] == pytest.approx(value, abs=1e-6), key
    # training did something: the loss fell
    assert one['losses'][-1] < one['losses'][0]


@pytest.mark.skipif(not (ML / 'u.data').exists(),
                    reason=f'staged MovieLens-100K not found at {ML}')
def test_cli_under_torchrun_writes_once_and_resumes(tmp_path):
    out = tmp_path / 'run'
    base = ['-m', 'pyg_recsys', '-q', 'train', '--model', 'lightgcn',
            '--dataset', 'movielens-100k', '--device', 'cpu', '--layers',
            '1', '--dim', '16', '--batch-size', '4096', '--no-progress',
            '--root', str(tmp_path / 'data')]
    common = [*base, '--out', str(out)]
    _torchrun([*common, '--epochs', '2'], cwd=tmp_path)
    metrics = json.loads((out / 'metrics.json').read_text())
    config = json.loads((out / 'config.json').read_text())
    assert metrics['world_size'] == 2 and config['world_size'] == 2
    assert [r['epoch'] for r in metrics['epochs']] == [1, 2]
    # one writer: no temporary files left, one checkpoint of each kind
    assert sorted(p.name for p in out.iterdir() if p.suffix == '.pt') == [
        'best.pt', 'last.pt', 'split.pt']
    # resume to 3 epochs in two processes: equals 3 epochs in one process
    _torchrun([*common, '--epochs', '3', '--resume'], cwd=tmp_path)
    resumed = json.loads((out / 'metrics.json').read_text())
    assert [r['epoch'] for r in resumed['epochs']] == [1, 2, 3]
    single = tmp_path / 'single'
    cmd = [sys.executable, *base, '--epochs', '3', '--out', str(single)]
    env = dict(os.environ, PYG_RECSYS_DATA=str(SHARED))
    subprocess.run(cmd, check=True, cwd=tmp_path, capture_output=True,
                   env=env)
    alone = json.loads((single / 'metrics.json').read_text())
    assert [r['loss'] for r in resumed['epochs']] == pytest.approx(
        [r['loss'] for r in alone['epochs']], rel=1e-5)
    assert resumed['test']['recall@20'] == pytest.approx(
        alone['test']['recall@20'], abs=1e-6)
