"""Rebuilds the README's result tables, the results' markdown files and
the Gowalla curve plots from ``benchmarks/results/*.json`` alone.

Every benchmark script builds its markdown with a ``markdown(record)``
function of the JSON record it writes; this script calls the same
function on the committed records, so no figure in the README is typed by
hand.  In ``README.md`` each generated block sits between the markers
``<!-- report:<stem> -->`` and ``<!-- /report:<stem> -->`` (``<stem>``:
the JSON file's name); the text between them is replaced, the prose
outside them is kept.  A record's ``# title`` becomes a bold line there.
The module of a record is the longest benchmark name its stem starts with
(``gowalla_quality_ngcf`` -> ``gowalla_quality.py``); ``*_smoke.json``
files are skipped.

    python benchmarks/report.py            # rewrite README, *.md, plots
    python benchmarks/report.py --check    # exit 1 with a diff if stale
    python benchmarks/report.py --smoke    # on a temporary copy
    python benchmarks/report.py --check --smoke

``--check`` writes nothing: it prints the unified diff between the files
(``README.md`` and ``results/<stem>.md``) and what would be generated and
exits 1 when they differ.  ``--smoke`` copies the README and the records
into a temporary folder, regenerates there (plots included), prints the
first table row of each block and, with ``--check``, checks the copy.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the benchmark modules live beside this
    sys.path.insert(0, str(HERE))

from pyg_recsys import typing as pt  # noqa: E402
from pyg_recsys.io import atomic_write_text  # noqa: E402

README = HERE.parent / 'README.md'
RESULTS = HERE / 'results'
#: benchmark scripts whose records the report renders (file stems)
MODULES = ('cf_movielens', 'cf_speed_gowalla', 'eval_speed',
           'gowalla_quality', 'gpu_check', 'graphrec_quality', 'kg_transe',
           'kgat_quality', 'kgcn_lastfm', 'lightgcn_gowalla', 'ogbl_ddi',
           'pinsage_quality', 'pinsage_scale', 'retrieval_gowalla',
           'serve_load', 'session_quality', 'session_speed_beauty',
           'twhin_quality')
BLOCK = re.compile(r'<!-- report:(?P<stem>[\w.-]+) -->\n.*?'
                   r'<!-- /report:(?P=stem) -->', re.S)


def module_of(stem: str):
    """The benchmark module that renders ``<stem>.json``."""
    names = [m for m in MODULES if stem == m or stem.startswith(m + '_')]
    if not names:
        raise SystemExit(f'report: no benchmark renders {stem}.json; add '
                         f'its script to MODULES in {Path(__file__).name}')
    return importlib.import_module(max(names, key=len))


def records(results: Path) -> dict[str, dict]:
    """The committed records in ``results``, by stem (no smoke runs)."""
    return {p.stem: json.loads(p.read_text())
            for p in sorted(results.glob('*.json'))
            if not p.stem.endswith('_smoke')}


def markdowns(recs: dict[str, dict]) -> dict[str, list[str]]:
    """Each record's markdown lines, by its script's ``markdown``."""
    return {stem: module_of(stem).markdown(rec)
            for stem, rec in recs.items()}


def readme_block(md: list[str]) -> list[str]:
    """A record's markdown as it goes into the README: headings become
    bold lines, so the README's own sections stay as they are."""
    return [re.sub(r'^#+ (.*)$', r'**\1**', line) for line in md]


def render_readme(text: str, mds: dict[str, list[str]]) -> str:
    """``text`` with every marked block replaced by its generated one."""
    def block(m: re.Match) -> str:
        stem = m['stem']
        if stem not in mds:
            raise SystemExit(f'report: README block {stem!r} has no '
                             f'results/{stem}.json')
        body = '\n'.join(readme_block(mds[stem]))
        return f'<!-- report:{stem} -->\n\n{body}\n\n<!-- /report:{stem} -->'
    return BLOCK.sub(block, text)


def plot(recs: dict[str, dict], results: Path) -> list[Path]:
    """Redraws the Gowalla curves (one picture per run and all runs on
    one) from the records; nothing when matplotlib is missing."""
    gowalla_quality = module_of('gowalla_quality')
    if not pt.WITH_MATPLOTLIB:
        return []
    names = [s[len('gowalla_quality_'):] for s in recs
             if s.startswith('gowalla_quality_')]
    out = []
    for name in names:
        png = gowalla_quality.plot_curves([name], results)
        out.append(png.replace(results / f'gowalla_quality_{name}.png'))
    if names:
        out.append(gowalla_quality.plot_curves(names, results))
    return out


def generate(readme: Path, results: Path,
             recs: dict[str, dict] | None = None) -> dict[Path, str]:
    """What the report would write: path -> text (README and *.md), from
    ``recs`` (default: the records in ``results``)."""
    mds = markdowns(records(results) if recs is None else recs)
    files = {results / f'{stem}.md': '\n'.join(md) + '\n'
             for stem, md in mds.items()}
    files[readme] = render_readme(readme.read_text(), mds)
    return files


def check(readme: Path = README, results: Path = RESULTS) -> str:
    """The unified diff between the files and what would be generated
    (empty when they agree)."""
    diff = []
    for path, text in generate(readme, results).items():
        old = path.read_text() if path.exists() else ''
        diff += difflib.unified_diff(
            old.splitlines(True), text.splitlines(True),
            f'{path.name} (on disk)', f'{path.name} (generated)')
    return ''.join(diff)


def write(readme: Path = README, results: Path = RESULTS,
          plots: bool = True) -> list[Path]:
    """Rewrites the README's blocks and the *.md files (and the plots);
    returns the files whose text changed."""
    recs = records(results)
    changed = []
    for path, text in generate(readme, results, recs).items():
        if not path.exists() or path.read_text() != text:
            atomic_write_text(text, path)
            changed.append(path)
    if plots:
        plot(recs, results)
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--check', action='store_true',
                   help='write nothing; exit 1 with a diff when stale')
    p.add_argument('--readme', type=Path, default=README)
    p.add_argument('--results', type=Path, default=RESULTS)
    p.add_argument('--no-plots', action='store_true')
    p.add_argument('--smoke', action='store_true',
                   help='regenerate a temporary copy; print a row per block')
    args = p.parse_args(argv)
    if args.smoke:  # a temporary copy of the README and the records
        tmp = Path(tempfile.mkdtemp(prefix='report_smoke_'))
        shutil.copy(args.readme, tmp / 'README.md')
        (tmp / 'results').mkdir()
        for path in args.results.glob('*.json'):
            shutil.copy(path, tmp / 'results' / path.name)
        args.readme, args.results = tmp / 'README.md', tmp / 'results'
        write(args.readme, args.results, plots=not args.no_plots)
        for m in BLOCK.finditer(args.readme.read_text()):
            lines = m[0].splitlines()
            rule = next((i for i, line in enumerate(lines)
                         if line.startswith('|---')), None)
            row = '-' if rule is None else lines[rule + 1]
            print(f'{m["stem"]}: {row}')
    if args.check:
        diff = check(args.readme, args.results)
        if diff:
            print(diff, end='')
            print(f'report: {args.readme} or results/*.md differ from the '
                  'records; run python benchmarks/report.py')
            code = 1
        else:
            print(f'report: {args.readme} and results/*.md match the '
                  'records')
            code = 0
    elif not args.smoke:
        for path in write(args.readme, args.results,
                          plots=not args.no_plots):
            print(f'report: rewrote {path}')
        code = 0
    else:
        code = 0
    if args.smoke:
        shutil.rmtree(args.results.parent)
    return code


if __name__ == '__main__':
    sys.exit(main())
