import os
import os.path as osp
import urllib.error
from pathlib import Path

import pytest
import torch

from pyg_recsys.data import audit, read_table
from pyg_recsys.datasets import RecDataset, default_root
from pyg_recsys.datasets.base import ParsedData, fetch_url

LOG = '1,10,5,100\n1,11,3,101\n1,12,4,102\n2,10,1,103\n2,12,2,104\n' \
      '2,13,5,105\n3,11,4,106\n'


class Toy(RecDataset):
    """A minimal data set over one CSV file, to test the base class."""

    name = 'toy'
    raw_files = ('log.csv',)
    url = 'file:///nonexistent/log.csv'
    builds = 0

    def download(self):
        fetch_url(self.url, osp.join(self.raw_dir, 'log.csv'), timeout=5)

    def build(self):
        Toy.builds += 1
        inter = read_table(osp.join(self.raw_dir, 'log.csv'), user_col=0,
                           item_col=1, rating_col=2, time_col=3)
        return ParsedData(
            inter, x={'item': torch.arange(inter.num_items * 2.).view(-1, 2)},
            feature_names={'item': ['a', 'b']},
            titles=[f'item {i}' for i in inter.item_ids.tolist()])


def listing(folder):
    return sorted((p.name, p.stat().st_mtime_ns)
                  for p in Path(folder).iterdir())


@pytest.fixture
def raw(tmp_path, monkeypatch):
    monkeypatch.delenv('PYG_RECSYS_DATA', raising=False)
    monkeypatch.delenv('PYG_RECSYS_ROOT', raising=False)
    folder = tmp_path / 'staged' / 'toy' / 'raw'
    folder.mkdir(parents=True)
    (folder / 'log.csv').write_text(LOG)
    return str(folder)


def test_dataset_surface(raw, tmp_path):
    ds = Toy(tmp_path / 'root', raw_dir=raw)
    data = ds[0]
    assert data['user', 'interacts', 'item'].edge_index.size(1) == 7
    assert data['item', 'rev_interacts', 'user'].rating.numel() == 7
    assert data['item'].x.shape == (4, 2)
    assert ds.interactions.user_ids.tolist() == [1, 2, 3]
    assert ds.interactions.item_index(13) == 3
    assert ds.item_titles == ['item 10', 'item 11', 'item 12', 'item 13']
    assert ds.feature_names == {'item': ['a', 'b']}
    assert ds.raw_file_names == ['log.csv'] and ds.raw_dir == raw
    assert ds.processed_dir == str(tmp_path / 'root' / 'toy' / 'processed')
    assert 'num_interactions=7' in repr(ds) and len(ds) == 1
    split = ds.split()
    assert split.kind == 'random' and split.info['dataset'] == 'toy'
    audit(split)
    assert ds.split('leave_one_out').test.size(1) == 2
    assert ds.split('temporal', cut_times=(103, 106)).test.size(1) == 1
    with pytest.raises(ValueError, match=r"Toy.split: unknown kind 'fixed'"):
        ds.split('fixed')


def test_processed_cache_reused_and_force_reload(raw, tmp_path):
    Toy.builds = 0
    Toy(tmp_path, raw_dir=raw)
    ds = Toy(tmp_path, raw_dir=raw)
    assert Toy.builds == 1 and len(ds.interactions) == 7
    Toy(tmp_path, raw_dir=raw, force_reload=True)
    assert Toy.builds == 2
    files = sorted(os.listdir(tmp_path / 'toy' / 'processed'))
    # one keyed file, its lock, no temporary files left behind
    assert len(files) == 2 and files[0] == '.lock'
    assert files[1].startswith('data_v2_') and files[1].endswith('.pt')
    assert ds.source['files'] == [osp.join(raw, 'log.csv')]
    assert ds.source['processed'].endswith(files[1])


def test_cache_is_keyed_by_the_raw_files(raw, tmp_path):
    Toy.builds = 0
    root = tmp_path / 'root'
    first = Toy(root, raw_dir=raw)
    other = tmp_path / 'other_raw'
    other.mkdir()
    (other / 'log.csv').write_text(LOG.replace('1,10,5,100', '9,10,5,100'))
    second = Toy(root, raw_dir=str(other))
    assert Toy.builds == 2  # other files: built anew, not the old cache
    assert second.interactions.user_ids.tolist() == [1, 2, 3, 9]
    assert first.source['cache_key'] != second.source['cache_key']
    assert Toy(root, raw_dir=raw).interactions.user_ids.tolist() == [1, 2, 3]
    assert Toy.builds == 2  # the first files' cache is still there
    Path(raw, 'log.csv').write_text(LOG + '4,13,1,107\n')
    assert Toy(root, raw_dir=raw).interactions.num_users == 4
    assert Toy.builds == 3  # same path, new content: rebuilt


def test_orphan_temporary_files_are_removed(raw, tmp_path):
    processed = tmp_path / 'toy' / 'processed'
    processed.mkdir(parents=True)
    orphan = processed / '.tmp-0123abcd-data_v2_x.pt'
    orphan.write_bytes(b'half a file')
    Toy(tmp_path, raw_dir=raw)
    assert not orphan.exists()
    assert not [f for f in os.listdir(processed) if f.startswith('.tmp-')]


def test_damaged_processed_file_names_it(raw, tmp_path):
    ds = Toy(tmp_path, raw_dir=raw)
    path = ds.processed_paths[0]
    Path(path).write_bytes(b'not a torch file')
    with pytest.raises(ValueError, match=r'data_v2_\w+\.pt: the Toy '
                       r'processed file is damaged .*; delete it'):
        Toy(tmp_path, raw_dir=raw)
    assert len(Toy(tmp_path, raw_dir=raw, force_reload=True).interactions) \
        == 7


def test_raw_dir_is_never_written(raw, tmp_path):
    before = listing(raw)
    os.chmod(raw, 0o555)
    try:
        Toy(tmp_path / 'root', raw_dir=raw)
    finally:
        os.chmod(raw, 0o755)
    assert listing(raw) == before


def test_failed_processing_leaves_nothing(raw, tmp_path):
    Path(raw, 'log.csv').write_text('1,10,5,100\n2,11,oops,101\n')
    with pytest.raises(ValueError, match=r'log.csv: line 2: rating '
                       r"'oops' is not a number"):
        Toy(tmp_path / 'root', raw_dir=raw)
    processed = tmp_path / 'root' / 'toy' / 'processed'
    left = os.listdir(processed) if processed.exists() else []
    assert [f for f in left if f != '.lock'] == []


def test_missing_raw_files_in_given_raw_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Toy: raw files "
                       r"\['log.csv'\] not found in raw_dir="):
        Toy(tmp_path / 'root', raw_dir=tmp_path)


def test_env_locations_and_download(raw, tmp_path, monkeypatch):
    monkeypatch.setenv('PYG_RECSYS_ROOT', str(tmp_path / 'envroot'))
    assert default_root() == str(tmp_path / 'envroot')
    monkeypatch.setenv('PYG_RECSYS_DATA', str(tmp_path / 'staged'))
    ds = Toy()
    assert ds.raw_dir == raw  # staged copy used, nothing downloaded
    assert osp.isfile(ds.processed_paths[0])
    assert ds.processed_dir == str(tmp_path / 'envroot' / 'toy' /
                                   'processed')
    # Incomplete staged folder: download into <root>/toy/raw.
    monkeypatch.setenv('PYG_RECSYS_DATA', str(tmp_path / 'nowhere'))
    monkeypatch.setattr(Toy, 'url', Path(raw, 'log.csv').as_uri())
    ds = Toy(tmp_path / 'other')
    assert ds.raw_dir == str(tmp_path / 'other' / 'toy' / 'raw')
    assert Path(ds.raw_dir, 'log.csv').read_text() == LOG
    # Raw present: the (now broken) URL is never touched.
    monkeypatch.setattr(Toy, 'url', 'file:///nonexistent/log.csv')
    Toy(tmp_path / 'other', force_reload=True)


def test_pre_transform_is_saved(raw, tmp_path):
    def add_flag(data):
        data['user'].flag = torch.ones(data['user'].num_nodes)
        return data
    Toy.builds = 0
    Toy(tmp_path, raw_dir=raw, pre_transform=add_flag)
    ds = Toy(tmp_path, raw_dir=raw, pre_transform=add_flag)
    assert Toy.builds == 1  # the transformed graph was saved and reused
    assert ds[0]['user'].flag.tolist() == [1.0, 1.0, 1.0]
    assert ds[0].orig_ids['item'].tolist() == [10, 11, 12, 13]
    # another pre_transform (here: none) is another cache
    assert 'flag' not in Toy(tmp_path, raw_dir=raw)[0]['user']
    assert Toy.builds == 2


def test_fetch_url_failure_leaves_nothing(tmp_path):
    with pytest.raises(urllib.error.URLError):
        fetch_url('file:///nonexistent/file.txt', str(tmp_path / 'f.txt'),
                  timeout=5)
    assert os.listdir(tmp_path) == []


def test_locate_reports_the_source_without_processing(raw, tmp_path,
                                                      monkeypatch):
    root = tmp_path / 'root'
    expected = osp.join(str(root), 'toy', 'raw')
    assert Toy.locate(root=str(root)) == (
        f'not found locally; downloaded into {expected} on first use')
    monkeypatch.setenv('PYG_RECSYS_DATA', str(tmp_path / 'staged'))
    assert Toy.locate(root=str(root)) == f'raw files in {raw}'
    assert not root.exists()  # nothing was processed or written
    Toy(root)
    monkeypatch.delenv('PYG_RECSYS_DATA')
    assert Toy.locate(root=str(root)).startswith('processed copy in ')


def test_processed_copy_without_raw_files_matches_the_options(raw, tmp_path,
                                                              monkeypatch):
    def add_flag(data):
        data['user'].flag = torch.ones(data['user'].num_nodes)
        return data
    Toy(tmp_path, raw_dir=raw)
    Toy(tmp_path, raw_dir=raw, pre_transform=add_flag)  # newer copy
    staged = Path(raw).parent.parent
    monkeypatch.setenv('PYG_RECSYS_DATA', str(staged))
    os.remove(Path(raw, 'log.csv'))  # raw gone: the processed copies serve
    plain = Toy(tmp_path)
    assert 'flag' not in plain[0]['user']  # not the newer, other copy
    assert len(plain.interactions) == 7
    assert 'flag' in Toy(tmp_path, pre_transform=add_flag)[0]['user']
