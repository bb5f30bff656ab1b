"""Ciao and Epinions (ratings + trust) against their published sizes."""
import io
import zipfile

import numpy as np
import pytest
import torch

from pyg_recsys.data import audit
from pyg_recsys.datasets import SocialDataset
from pyg_recsys.schema import USER_USER

scipy_io = pytest.importorskip('scipy.io')


@pytest.fixture(scope='module')
def ciao(staged, tmp_path_factory):
    raw = staged('ciao', ('ciao.zip',))
    return SocialDataset(tmp_path_factory.mktemp('root'), 'ciao',
                         raw_dir=raw)


def test_ciao_sizes_match_graphrec(ciao):
    info = ciao.interactions.info
    # GraphRec's Ciao: 7,317 users, 104,975 items, 283,319 ratings
    assert info['ratings_of_trust_users'] == 283320
    assert info['items_of_trust_users'] == 104975
    assert ciao.interactions.num_users == 7317
    assert info['raw_ratings'] == 284086
    assert info['raw_conflicting_pairs'] == 458
    assert info['zero_ratings_dropped'] == 34
    assert info['trust_links'] == 111781
    inter = ciao.interactions
    assert float(inter.rating.min()) >= 1 and float(inter.rating.max()) <= 5
    key = inter.user * inter.num_items + inter.item
    assert torch.unique(key).numel() == len(inter)  # conflicts resolved
    assert len(inter) == 283320 - 34 - info['duplicate_ratings_dropped']


def test_ciao_splits_keep_trust_in_the_graph(ciao):
    split = ciao.split()
    assert split.info['per_user'] is False
    total = len(ciao.interactions)
    assert split.train.size(1) == int(np.floor(total * 0.8 + 0.5))
    assert split.attrs['train']['rating'].numel() == split.train.size(1)
    g = split.graph()
    assert g[USER_USER].edge_index.size(1) == 111781
    assert g['user', 'rev_trusts', 'user'].edge_index.size(1) == 111781
    audit(split)
    sixty = ciao.split(ratios=(0.6, 0.2, 0.2))
    assert sixty.train.size(1) == int(np.floor(total * 0.6 + 0.5))
    assert sixty.meta()['ratios'] == [0.6, 0.2, 0.2]


def test_epinions_sizes(staged, tmp_path):
    raw = staged('epinions', ('epinions.zip',))
    ds = SocialDataset(tmp_path, 'epinions', raw_dir=raw)
    info = ds.interactions.info
    assert info['raw_ratings'] == 922267
    assert info['raw_conflicting_pairs'] == 3242
    assert info['raw_trust_links'] == 355754
    assert info['trust_self_links_dropped'] == 224
    assert info['trust_duplicates_dropped'] == 27
    assert ds.interactions.num_users == 18098  # the trust network's users
    assert info['ratings_of_trust_users'] == 764693


def write_zip(path, name, rating=None, trust=None, rating_field='rating',
              trust_field='trustnetwork'):
    with zipfile.ZipFile(path, 'w') as zf:
        for file, field, value in (('rating.mat', rating_field, rating),
                                   ('trustnetwork.mat', trust_field, trust)):
            if value is None:
                continue
            buf = io.BytesIO()
            scipy_io.savemat(buf, {field: value})
            zf.writestr(f'{name}/{file}', buf.getvalue())
    return path


RATING = np.array([[1, 10, 0, 4, 0], [1, 11, 0, 5, 0], [2, 10, 0, 3, 0],
                   [2, 10, 0, 5, 0], [3, 12, 0, 0, 0], [9, 12, 0, 2, 0]])
TRUST = np.array([[1, 2], [2, 3], [3, 3], [1, 2]])


def test_small_file_cleaning(tmp_path):
    raw = tmp_path / 'raw'
    raw.mkdir()
    write_zip(raw / 'ciao.zip', 'ciao', RATING, TRUST)
    ds = SocialDataset(tmp_path / 'root', 'ciao', raw_dir=str(raw))
    inter = ds.interactions
    assert inter.user_ids.tolist() == [1, 2, 3]  # user 9 is not in trust
    info = inter.info
    assert info['zero_ratings_dropped'] == 1
    assert info['conflicting_pairs'] == 1  # user 2 rated item 10 twice
    pairs = dict(zip(zip(inter.user.tolist(), inter.item.tolist()),
                     inter.rating.tolist()))
    assert pairs == {(0, 0): 4.0, (0, 1): 5.0, (1, 0): 5.0}  # last row
    assert info['trust_self_links_dropped'] == 1
    assert info['trust_duplicates_dropped'] == 1
    assert ds[0][USER_USER].edge_index.tolist() == [[0, 1], [1, 2]]


def test_malformed_inputs(tmp_path):
    raw = tmp_path / 'raw'
    raw.mkdir()
    write_zip(raw / 'ciao.zip', 'ciao', RATING, TRUST, rating_field='rates')
    with pytest.raises(ValueError, match=r"ciao.zip!ciao/rating.mat: has no "
                       r"field 'rating' \(fields: \['rates'\]\)"):
        SocialDataset(tmp_path / 'a', 'ciao', raw_dir=str(raw))
    write_zip(raw / 'ciao.zip', 'ciao', RATING, np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r'ciao/trustnetwork.mat: the trust '
                       r'network is empty'):
        SocialDataset(tmp_path / 'b', 'ciao', raw_dir=str(raw))
    write_zip(raw / 'ciao.zip', 'ciao', RATING[:, :3], TRUST)
    with pytest.raises(ValueError, match=r"'rating' must be a matrix with at "
                       r'least 4 columns'):
        SocialDataset(tmp_path / 'c', 'ciao', raw_dir=str(raw))
    write_zip(raw / 'ciao.zip', 'ciao', RATING)
    with pytest.raises(ValueError, match=r'ciao.zip: the archive has no '
                       r'trustnetwork.mat'):
        SocialDataset(tmp_path / 'd', 'ciao', raw_dir=str(raw))
    (raw / 'ciao.zip').write_bytes(b'not a zip')
    with pytest.raises(ValueError, match=r'ciao.zip: not a zip archive'):
        SocialDataset(tmp_path / 'e', 'ciao', raw_dir=str(raw))
    with pytest.raises(ValueError, match="unknown name 'douban'"):
        SocialDataset(tmp_path, 'douban')
