"""Every command documented in the README and in the docstrings of the
benchmarks and examples runs as written, in its short mode (``--smoke``:
synthetic or tiny data, a few steps)."""
import ast
import os
import re
import shlex
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
# the staged file each example reads in its short mode (default:
# MovieLens-100K); benchmarks make synthetic data
NEEDS = {'srgnn_yoochoose.py': 'yoochoose1_64-srgnn/raw/train.txt',
         'sasrec_beauty.py': 'beauty-s3rec/raw/Beauty.txt',
         'transe_kg.py': 'kinship/raw/train.txt',
         'kgcn_lastfm.py': 'lastfm-kgcn/raw/kg.txt',
         'kgat_lastfm.py': 'lastfm-kgcn/raw/kg.txt',
         'twhin_lastfm.py': 'lastfm-kgcn/raw/kg.txt',
         'graphrec_ciao.py': 'ciao/raw/ciao.zip'}
# what a script's short mode prints when it worked (a metric, a table row)
PRINTS = re.compile(r'(recall|hits?|ndcg|mrr)@\d+|s/epoch|seconds|\| *\d|'
                    r'RMSE \d')


def _commands(text: str, prefix: str, markdown: bool = False
              ) -> list[list[str]]:
    """The commands starting with ``prefix`` in ``text``: shell lines
    (``\\`` continues a line, ``#`` starts a comment) and, in markdown,
    the lines of shell code blocks and inline ``code spans``."""
    out = []
    if markdown:
        parts = re.split(r'^```(\w*)\n(.*?)^```', text, flags=re.S | re.M)
        prose = ' '.join(parts[0::3])
        shell = '\n'.join(code for lang, code in zip(parts[1::3],
                                                     parts[2::3])
                          if lang in ('bash', 'sh', 'shell'))
        lines = shell.replace('\\\n', ' ').splitlines()
        lines += re.findall(r'`([^`]+)`', prose.replace('\n', ' '))
    else:
        lines = text.replace('\\\n', ' ').splitlines()
    for line in lines:
        line = line.strip()
        if not line.startswith(prefix):
            continue
        words = shlex.split(line, comments=True)
        if words and words not in out:
            out.append(words)
    return out


def documented_commands() -> list[list[str]]:
    """``python <script> ...`` commands of the README and the scripts'
    docstrings."""
    found = _commands((ROOT / 'README.md').read_text(), 'python ',
                      markdown=True)
    for script in SCRIPTS:
        doc = ast.get_docstring(ast.parse(script.read_text())) or ''
        rel = script.relative_to(ROOT)
        cmds = _commands(doc, 'python ')
        assert cmds, f'{rel} documents no command in its docstring'
        for cmd in cmds:
            assert cmd[1] == str(rel), f'{rel} documents {cmd}'
        found += [c for c in cmds if c not in found]
    return found


def _smoke(cmd: list[str]) -> list[str]:
    return cmd if '--smoke' in cmd else [*cmd, '--smoke']


COMMANDS = []
for _cmd in documented_commands():
    if _smoke(_cmd) not in COMMANDS:
        COMMANDS.append(_smoke(_cmd))


def test_every_script_has_a_documented_short_mode():
    documented = {c[1] for c in COMMANDS}
    assert documented == {str(p.relative_to(ROOT)) for p in SCRIPTS}


def _params() -> list:
    """Every documented command; beyond the first of each script they are
    marked ``slow`` (the default run checks each script once, ``make
    test-all`` every variant)."""
    seen: set[str] = set()
    out = []
    for cmd in COMMANDS:
        marks = [pytest.mark.slow] if cmd[1] in seen else []
        seen.add(cmd[1])
        out.append(pytest.param(cmd, marks=marks, id=' '.join(cmd[1:])))
    return out


@pytest.mark.parametrize('cmd', _params())
def test_documented_command_runs(cmd, tmp_path):
    script = ROOT / cmd[1]
    needs = NEEDS.get(script.name, 'movielens-100k/raw/u.data')
    if script.parent.name == 'examples' and not (SHARED / needs).exists():
        pytest.skip(f'staged {needs} not found under {SHARED}')
    env = dict(os.environ, PYG_RECSYS_DATA=str(SHARED),
               PYG_RECSYS_ROOT=str(tmp_path / 'data'), OMP_NUM_THREADS='1')
    res = subprocess.run([sys.executable, str(script), *cmd[2:]],
                         cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert PRINTS.search(res.stdout), (
        f'{" ".join(cmd)} printed no metric or table:\n{res.stdout[-2000:]}')


def test_readme_cli_commands_parse_and_pass_the_option_checks():
    """The ``pyg-recsys`` commands of the README are valid as written:
    known model and data set of one task kind, options the model takes
    (training them is what the smoke runs and `make demo` do)."""
    from pyg_recsys.cli.options import build_parser
    from pyg_recsys.cli.run import check_options
    cmds = _commands((ROOT / 'README.md').read_text(), 'pyg-recsys ',
                     markdown=True)
    assert any(c[1] == 'train' for c in cmds)
    for cmd in cmds:
        args = build_parser().parse_args(cmd[1:])
        if args.command == 'train':
            check_options(args)


def test_gpu_check_needs_no_compiled_extensions(tmp_path):
    """The GPU machine has torch and PyG only: ``benchmarks/gpu_check.py``
    must run with torch-scatter, torch-sparse and ogb unimportable."""
    prelude = ('import runpy, sys\n'
               'for m in ("torch_scatter", "torch_sparse", "ogb"):\n'
               '    sys.modules[m] = None\n'
               'sys.argv = sys.argv[1:]\n'
               'runpy.run_path(sys.argv[0], run_name="__main__")\n')
    script = ROOT / 'benchmarks' / 'gpu_check.py'
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYG_RECSYS_ROOT=str(tmp_path / 'data'))
    res = subprocess.run(
        [sys.executable, '-c', prelude, str(script), '--device', 'cpu',
         '--smoke', '--out', str(tmp_path)], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    import json
    record = json.loads((tmp_path / 'gpu_check_smoke.json').read_text())
    assert not record['failed']
    from pyg_recsys.cli.table import MODELS
    models = {r['model'] for r in record['rows']}
    assert set(MODELS) <= models
    assert {'PyG LightGCN (edge_index)', 'PyG LightGCN (csr)'} <= models
    # the device code path of every model trains without a read-back
    assert all(r['sync'] == [] for r in record['rows']
               if r['sync'] is not None)
    # and recommends in raw ids on its device, as the server asks
    served = {r['model']: r['serve'] for r in record['rows'] if 'serve' in r}
    assert set(served) == set(MODELS)
    assert all(v in ('-', '5 items') for v in served.values()), served
