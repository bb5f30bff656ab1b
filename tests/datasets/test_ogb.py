import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

from pyg_recsys.datasets.ogb import OGBLinkDataset, load_split_file
from pyg_recsys.metrics import link_hits_at_k
from pyg_recsys.testing import needs

pytestmark = needs('ogb')


@pytest.fixture(scope='module')
def ddi(ogbl_ddi_raw, tmp_path_factory):
    root = tmp_path_factory.mktemp('ogb_root')
    return OGBLinkDataset('ogbl-ddi', root=str(root), raw_dir=ogbl_ddi_raw)


@pytest.mark.data
def test_ddi_sizes_match_source_md(ddi, ogbl_ddi_raw):
    assert ddi.num_nodes == 4267
    assert ddi.data.edge_index.shape == (2, 2 * 1_067_911)
    split = ddi.edge_split()
    sizes = {part: {k: tuple(v.shape) for k, v in d.items()}
             for part, d in split.items()}
    assert sizes == {'train': {'edge': (1_067_911, 2)},
                     'valid': {'edge': (133_489, 2),
                               'edge_neg': (101_882, 2)},
                     'test': {'edge': (133_489, 2),
                              'edge_neg': (95_599, 2)}}
    assert split['valid']['edge'].dtype == torch.long
    # the graph is the training edges, both directions
    def keys(pairs):  # undirected edge -> one sorted key
        lo, hi = pairs.min(0).values, pairs.max(0).values
        return torch.sort(lo * ddi.num_nodes + hi).values

    ei = ddi.data.edge_index
    both = keys(ei)
    assert torch.equal(both[0::2], both[1::2])  # each edge twice
    assert torch.equal(both[0::2], keys(split['train']['edge'].t()))
    # staged files are linked, never copied, and nothing is written there
    assert osp.islink(osp.join(ddi.folder, 'split'))
    assert osp.isfile(osp.join(ddi.folder, 'processed',
                               'geometric_data_processed.pt'))
    assert not osp.exists(osp.join(ogbl_ddi_raw, 'processed'))
    assert 'ogbl-ddi' in repr(ddi)


@pytest.mark.data
def test_ddi_found_through_env_and_reused(ddi, ogbl_ddi_raw, monkeypatch):
    staged_root = osp.dirname(osp.dirname(osp.dirname(ogbl_ddi_raw)))
    monkeypatch.setenv('PYG_RECSYS_DATA', staged_root)
    again = OGBLinkDataset('ogbl-ddi', root=osp.dirname(ddi.root))
    assert again.folder == ddi.folder
    assert os.readlink(osp.join(again.folder, 'raw')) == osp.join(
        ogbl_ddi_raw, 'raw')
    assert again.num_nodes == 4267


def test_split_file_reader_round_trip_and_refuses_code(tmp_path):
    path = str(tmp_path / 'valid.pt')
    edge = np.arange(12, dtype=np.int64).reshape(6, 2)
    torch.save({'edge': edge, 'edge_neg': edge[:2]}, path)
    out = load_split_file(path)
    assert torch.equal(out['edge'], torch.from_numpy(edge))
    assert out['edge_neg'].shape == (2, 2)
    evil = str(tmp_path / 'evil.pt')
    torch.save({'edge': edge, 'hook': os.system}, evil)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        load_split_file(evil)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="OGBLinkDataset: 'movielens' is "
                                         'not an OGB link'):
        OGBLinkDataset('movielens', root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match='does not hold OGB'):
        OGBLinkDataset('ogbl-ddi', root=str(tmp_path),
                       raw_dir=str(tmp_path))


def test_hits_agrees_with_ogb_evaluator():
    from ogb.linkproppred import Evaluator
    evaluator = Evaluator(name='ogbl-ddi')
    gen = torch.Generator().manual_seed(0)
    cases = [(torch.randn(500, generator=gen),
              torch.randn(300, generator=gen) + 1.0),
             # integer scores: many ties with the K-th negative
             (torch.randint(0, 20, (400,), generator=gen).float(),
              torch.randint(0, 20, (50,), generator=gen).float()),
             (torch.randn(30, generator=gen), torch.randn(15, generator=gen))]
    for pos, neg in cases:
        for k in (10, 20, 30):
            evaluator.K = k
            ref = evaluator.eval({'y_pred_pos': pos,
                                  'y_pred_neg': neg})[f'hits@{k}']
            assert link_hits_at_k(pos, neg, k) == pytest.approx(ref)
