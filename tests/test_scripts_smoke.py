"""Every example and benchmark runs end to end in its short mode."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / 'shared' / 'datasets'
# modules beside the scripts (benchmarks/_common.py) start with '_'
SCRIPTS = sorted(p for p in [*ROOT.glob('examples/*.py'),
                             *ROOT.glob('benchmarks/*.py')]
                 if not p.name.startswith('_'))
# scripts that serve more than one model run once per model
CASES = [(p, []) for p in SCRIPTS] + [
    (ROOT / 'examples' / 'sage_movielens.py', ['--model', 'gat']),
    (ROOT / 'examples' / 'srgnn_yoochoose.py', ['--model', 'tagnn']),
    (ROOT / 'examples' / 'sasrec_beauty.py', ['--model', 'gru4rec'])]
# the staged file each example reads (default: MovieLens-100K)
NEEDS = {'srgnn_yoochoose.py': 'yoochoose1_64-srgnn/raw/train.txt',
         'sasrec_beauty.py': 'beauty-s3rec/raw/Beauty.txt'}


@pytest.mark.parametrize('script,extra', CASES,
                         ids=[' '.join([p.name, *a]) for p, a in CASES])
def test_script_smoke(script, extra, tmp_path):
    needs = NEEDS.get(script.name, 'movielens-100k/raw/u.data')
    if script.parent.name == 'examples' and not (SHARED / needs).exists():
        pytest.skip(f'staged {needs} not found under {SHARED}')
    env = dict(os.environ, PYG_RECSYS_DATA=str(SHARED),
               PYG_RECSYS_ROOT=str(tmp_path / 'data'), OMP_NUM_THREADS='1')
    res = subprocess.run([sys.executable, str(script), '--smoke', *extra],
                         cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip(), f'{script.name} --smoke printed nothing'
