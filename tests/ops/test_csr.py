import pytest
import torch

from pyg_recsys.ops.csr import CSR, isin_sorted


def _csr():
    rows = torch.tensor([2, 0, 0, 2, 0])
    cols = torch.tensor([1, 3, 0, 1, 3])  # duplicates (0,3) and (2,1)
    return CSR.from_pairs(rows, cols, 4, 5)


def test_from_pairs_sorts_and_dedups():
    c = _csr()
    assert c.rowptr.tolist() == [0, 2, 2, 3, 3]
    assert c.col.tolist() == [0, 3, 1]
    assert c.degree().tolist() == [2, 0, 1, 0]
    assert c.rows().tolist() == [0, 0, 2]
    assert c.keys().tolist() == [0, 3, 11]
    assert c.row(0).tolist() == [0, 3] and c.row(1).numel() == 0


def test_select_and_contains_match_python_sets():
    torch.manual_seed(0)
    rows = torch.randint(0, 30, (200,))
    cols = torch.randint(0, 17, (200,))
    c = CSR.from_pairs(rows, cols, 30, 17)
    sets = [set() for _ in range(30)]
    for r, k in zip(rows.tolist(), cols.tolist()):
        sets[r].add(k)
    pick = torch.tensor([5, 0, 5, 29])
    pos, col = c.select(pick)
    got = [set() for _ in pick]
    for p, k in zip(pos.tolist(), col.tolist()):
        got[p].add(k)
    assert got == [sets[u] for u in pick.tolist()]
    q = torch.randint(0, 17, (4, 9))
    mask = c.contains(pick, q)
    for i, u in enumerate(pick.tolist()):
        assert mask[i].tolist() == [k in sets[u] for k in q[i].tolist()]


def test_union():
    a = CSR.from_pairs(torch.tensor([0, 1]), torch.tensor([2, 0]), 2, 3)
    b = CSR.from_pairs(torch.tensor([0, 0]), torch.tensor([2, 1]), 2, 3)
    u = CSR.union(a, b)
    assert u.rowptr.tolist() == [0, 2, 3] and u.col.tolist() == [1, 2, 0]


def test_contains_on_empty_index():
    e = CSR.from_pairs(torch.empty(0), torch.empty(0), 2, 3)
    assert not e.contains(torch.tensor([0]), torch.tensor([[1, 2]])).any()


def test_from_pairs_errors():
    with pytest.raises(ValueError, match='got 2 rows but 1 cols'):
        CSR.from_pairs(torch.tensor([0, 1]), torch.tensor([0]), 2, 2)
    with pytest.raises(ValueError, match=r'row ids must lie in \[0, 2\)'):
        CSR.from_pairs(torch.tensor([2]), torch.tensor([0]), 2, 2)
    with pytest.raises(ValueError, match=r'col ids must lie in \[0, 2\)'):
        CSR.from_pairs(torch.tensor([0]), torch.tensor([-1]), 2, 2)


def test_isin_sorted_matches_torch_isin():
    torch.manual_seed(0)
    keys = torch.unique(torch.randint(0, 50, (20,)))
    query = torch.randint(-3, 55, (4, 7))
    assert torch.equal(isin_sorted(query, keys), torch.isin(query, keys))
    assert not isin_sorted(query, keys[:0]).any()


def test_degree_of_selected_rows():
    c = _csr()
    assert c.degree(torch.tensor([2, 0, 0, 3])).tolist() == [1, 2, 2, 0]
