"""``benchmarks/report.py``: the README's result tables and the results'
markdown files are what the benchmark scripts' ``markdown(record)``
makes of the committed JSON records, and nothing in them is typed."""
import importlib.util
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'benchmarks' / 'results'


def _load():
    spec = importlib.util.spec_from_file_location(
        'report', ROOT / 'benchmarks' / 'report.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = _load()


def _results_section() -> str:
    text = (ROOT / 'README.md').read_text()
    return text[text.index('## Results'):text.index('## Layout')]


def _copy(tmp_path: Path) -> tuple[Path, Path]:
    readme = tmp_path / 'README.md'
    shutil.copy(ROOT / 'README.md', readme)
    results = tmp_path / 'results'
    results.mkdir()
    for path in [*RESULTS.glob('*.json'), *RESULTS.glob('*.md')]:
        shutil.copy(path, results / path.name)
    return readme, results


def test_readme_and_results_md_match_the_records():
    diff = report.check()
    assert diff == '', ('README.md or results/*.md differ from the records; '
                        'run python benchmarks/report.py\n' + diff[:5000])


def test_every_results_table_is_generated():
    section = _results_section()
    blocks = {m['stem'] for m in report.BLOCK.finditer(section)}
    outside = report.BLOCK.sub('', section)
    typed = [line for line in outside.splitlines() if line.startswith('|')]
    assert typed == [], f'tables typed by hand in README Results: {typed}'
    # one block per committed record, and no block without one
    assert blocks == set(report.records(RESULTS))
    for stem in blocks:
        assert section.count(f'<!-- report:{stem} -->') == 1


def test_an_edited_figure_fails_the_check(tmp_path):
    readme, results = _copy(tmp_path)
    assert report.check(readme, results) == ''
    text = readme.read_text()
    block = next(m for m in report.BLOCK.finditer(text)
                 if m['stem'] == 'cf_movielens')
    edited = block[0].replace('| 0.3779 |', '| 0.3780 |', 1)
    assert edited != block[0]
    readme.write_text(text.replace(block[0], edited))
    diff = report.check(readme, results)
    assert '-| lightgcn | 110 (90) | 0.3780 |' in diff
    assert '+| lightgcn | 110 (90) | 0.3779 |' in diff
    assert report.main(['--check', '--readme', str(readme), '--results',
                        str(results)]) == 1
    # writing restores the figure and keeps the prose outside the markers
    readme.write_text(readme.read_text().replace(
        'All figures below were measured here',
        'All figures below, edited prose, were measured here'))
    assert report.main(['--readme', str(readme), '--results', str(results),
                        '--no-plots']) == 0
    assert report.check(readme, results) == ''
    assert 'edited prose' in readme.read_text()
    assert '| 0.3780 |' not in readme.read_text()


def test_an_edited_results_md_fails_the_check(tmp_path):
    readme, results = _copy(tmp_path)
    md = results / 'kg_transe.md'
    md.write_text(md.read_text().replace('0.3184', '0.3185'))
    assert '+| fb15k-237 | 60 (60) | 15.15 | 0.3184' in report.check(
        readme, results)


def test_records_and_blocks_must_have_a_renderer(tmp_path):
    with pytest.raises(SystemExit, match='no benchmark renders '
                       'nobody_ran_this.json'):
        report.module_of('nobody_ran_this')
    text = '<!-- report:gone -->\nold\n<!-- /report:gone -->\n'
    with pytest.raises(SystemExit, match="README block 'gone' has no "
                       'results/gone.json'):
        report.render_readme(text, {})


def test_readme_block_keeps_the_readme_headings():
    lines = report.readme_block(['# Title', '', 'text', '## Part', '| 1 |'])
    assert lines == ['**Title**', '', 'text', '**Part**', '| 1 |']
    assert not any(re.match(r'#', line) for line in lines)
