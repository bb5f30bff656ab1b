"""The faiss retrieval index with known items excluded
(:mod:`pyg_recsys.ops.index`), against the chunked exact top-k."""
import numpy as np
import pytest
import torch

from pyg_recsys.ops.index import ItemIndex


def _exact(users, items, k, exclude):
    from pyg_recsys.ops.topk import chunked_topk
    return chunked_topk(lambda c: users[c] @ items.t(),
                        torch.arange(users.size(0)), k, exclude, 16)


@pytest.mark.parametrize('kind', ['exact', 'hnsw', 'ivf'])
def test_item_index_excludes_known_items_and_finds_the_top_k(kind):
    pytest.importorskip('faiss')
    from pyg_recsys.ops.csr import CSR
    gen = torch.Generator().manual_seed(0)
    users = torch.randn(50, 8, generator=gen)
    items = torch.randn(400, 8, generator=gen)
    rows = torch.randint(0, 50, (3000,), generator=gen)
    cols = torch.randint(0, 400, (3000,), generator=gen)
    exclude = CSR.from_pairs(rows, cols, 50, 400)
    index = ItemIndex(items, kind, nlist=8, nprobe=8)
    scores, found = index.search(users, 10, exclude=exclude)
    ref_s, ref_i = _exact(users, items, 10, exclude)
    assert not exclude.contains(torch.arange(50), found).any()
    if kind == 'ivf':  # nprobe = nlist: every cell searched, exact
        assert torch.equal(found, ref_i)
    if kind == 'exact':
        assert torch.equal(found, ref_i)
        torch.testing.assert_close(scores, ref_s)
    else:
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in
                          zip(found.tolist(), ref_i.tolist())])
        assert recall >= 0.95
    # rows: queries that are not the CSR's rows in order
    perm = torch.randperm(50, generator=gen)
    _, again = index.search(users[perm], 10, exclude=exclude, rows=perm)
    if kind != 'hnsw':
        assert torch.equal(again, found[perm])


def test_item_index_pads_when_too_few_items_are_left_and_checks_input():
    pytest.importorskip('faiss')
    from pyg_recsys.ops.csr import CSR
    items = torch.eye(4)
    exclude = CSR.from_pairs(torch.tensor([0, 0, 0]), torch.tensor([0, 1,
                                                                    2]), 1,
                             4)
    scores, found = ItemIndex(items).search(torch.ones(1, 4), 3,
                                            exclude=exclude)
    assert found.tolist() == [[3, -1, -1]]
    assert torch.isinf(scores[0, 1:]).all()
    with pytest.raises(ValueError, match="unknown kind 'lsh'"):
        ItemIndex(items, 'lsh')
    with pytest.raises(ValueError, match=r'k must be in \[1, 4\], got 5'):
        ItemIndex(items).search(torch.ones(1, 4), 5)
    with pytest.raises(ValueError, match=r'queries must be \[B, 4\]'):
        ItemIndex(items).search(torch.ones(1, 3), 2)




def test_item_index_errors(monkeypatch):
    pytest.importorskip('faiss')
    from pyg_recsys import typing as pt
    from pyg_recsys.ops.csr import CSR
    items = torch.randn(10, 4)
    index = ItemIndex(items)
    exclude = CSR.from_pairs(torch.tensor([0]), torch.tensor([1]), 2, 9)
    with pytest.raises(ValueError, match='exclude has 9 columns for 10 '
                                         'items'):
        index.search(torch.ones(2, 4), 2, exclude=exclude)
    exclude = CSR.from_pairs(torch.tensor([0]), torch.tensor([1]), 2, 10)
    with pytest.raises(ValueError, match='3 rows for 2 queries'):
        index.search(torch.ones(2, 4), 2, exclude=exclude,
                     rows=torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r'nlist must be in \[1, 10\]'):
        ItemIndex(items, 'ivf', nlist=11)
    with pytest.raises(ValueError, match='ef_search must be >= 1'):
        ItemIndex(items, 'hnsw', ef_search=0)
    with pytest.raises(ValueError, match='non-empty'):
        ItemIndex(torch.empty(0, 4))
    monkeypatch.setattr(pt, 'WITH_FAISS', False)
    with pytest.raises(ImportError, match='pip install faiss-cpu'):
        ItemIndex(items)
