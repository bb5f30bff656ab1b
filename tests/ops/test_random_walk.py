import pytest
import torch

from pyg_recsys.ops.adj import NormAdj
from pyg_recsys.ops.random_walk import (
    importance_neighbors,
    ppr_scores,
    random_walk,
    rank_visits,
    rwr_visits,
)

# A directed graph with a dangling node (5) and an isolated one (6).
EDGES = [(0, 1), (0, 2), (1, 2), (1, 5), (2, 0), (2, 3), (3, 4), (4, 0),
         (4, 2)]
N = 7


def _graph():
    src = torch.tensor([e[0] for e in EDGES])
    dst = torch.tensor([e[1] for e in EDGES])
    rowptr = torch.zeros(N + 1, dtype=torch.long)
    rowptr[1:] = torch.bincount(src, minlength=N).cumsum(0)
    return rowptr, dst  # EDGES are sorted by source


def _exact_ppr(alpha: float) -> torch.Tensor:
    """Power iteration of pi_s = a e_s + (1-a) (pi_s P + (pi_s . d) e_s),
    dangling mass back to the source; row s is pi_s."""
    A = torch.zeros(N, N, dtype=torch.float64)
    for a, b in EDGES:
        A[a, b] = 1
    deg = A.sum(1)
    P = A / deg.clamp(min=1)[:, None]
    dangling = (deg == 0).double()
    E = torch.eye(N, dtype=torch.float64)
    pi = E.clone()
    for _ in range(300):
        pi = alpha * E + (1 - alpha) * (pi @ P + (pi @ dangling)[:, None] * E)
    return pi


def test_walks_only_follow_edges_or_restart():
    rowptr, col = _graph()
    edges = set(EDGES)
    start = torch.arange(N).repeat(40)
    for p in (0.0, 0.3):
        walk = random_walk(rowptr, col, start, 12, restart_prob=p,
                           generator=torch.Generator().manual_seed(0))
        assert walk.shape == (start.numel(), 13)
        assert torch.equal(walk[:, 0], start)
        restarts = 0
        for row in walk.tolist():
            for a, b in zip(row, row[1:]):
                if (a, b) in edges:
                    continue
                # no edge: a restart, or a dangling/isolated node going home
                assert b == row[0]
                assert p > 0 or a in (5, 6)
                restarts += a not in (5, 6)
        assert (restarts > 0) == (p > 0)
    # isolated start node stays; walk_length 0 is just the start
    iso = random_walk(rowptr, col, torch.tensor([6]), 5)
    assert iso.tolist() == [[6] * 6]
    assert random_walk(rowptr, col, start, 0).tolist() == [
        [s] for s in start.tolist()]


def test_steps_are_uniform_over_neighbours_and_restart_at_rate():
    rowptr, col = _graph()
    gen = torch.Generator().manual_seed(1)
    walk = random_walk(rowptr, col, torch.full((40000,), 4), 1,
                       restart_prob=0.25, generator=gen)
    freq = torch.bincount(walk[:, 1], minlength=N).double() / 40000
    # node 4 -> {0, 2}; a restart stays at 4 (no self-loop)
    expect = torch.tensor([0.375, 0, 0.375, 0, 0.25, 0, 0],
                          dtype=torch.float64)
    assert torch.allclose(freq, expect, atol=0.01)


def test_reproducible_with_a_generator():
    rowptr, col = _graph()
    start = torch.arange(N).repeat(10)

    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        return (random_walk(rowptr, col, start, 8, 0.2, gen),
                rwr_visits(rowptr, col, torch.arange(N), 50, 0.2, gen))

    a, b, c = run(3), run(3), run(4)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    assert torch.equal(a[1][0], b[1][0]) and torch.equal(a[1][1], b[1][1])
    assert not torch.equal(a[1][1], c[1][1])


def test_monte_carlo_ppr_matches_power_iteration():
    rowptr, col = _graph()
    alpha, walks = 0.3, 20000
    est = ppr_scores(rowptr, col, torch.arange(N), walks, alpha,
                     torch.Generator().manual_seed(0)).double()
    exact = _exact_ppr(alpha)
    assert torch.allclose(exact.sum(1), torch.ones(N, dtype=torch.float64))
    # Standard error of a visit-count estimate is at most
    # alpha * sqrt(Var[visits per walk] / walks) <= sqrt(alpha / walks)
    # ~ 0.004 here (visits per walk are at most geometric with mean
    # 1 / alpha); the tolerance is 5 of those.
    tol = 5 * (alpha / walks) ** 0.5
    assert (est - exact).abs().max() < tol
    # ... and tight enough to tell a different restart probability apart
    assert (est - _exact_ppr(0.5)).abs().max() > 4 * tol


def test_rwr_visits_on_the_bipartite_graph_and_count_mask():
    # 3 users, 4 items; user 2 has no items (isolated node)
    ei = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 3]])
    adj = NormAdj.from_edge_index(ei, 3, 4)
    sources = torch.tensor([1, 0, 2])
    is_item = torch.arange(7) >= 3
    full = rwr_visits(adj.rowptr, adj.col, sources, 200, 0.2,
                      torch.Generator().manual_seed(0))
    items = rwr_visits(adj.rowptr, adj.col, sources, 200, 0.2,
                       torch.Generator().manual_seed(0), count=is_item)
    (pos, node), cnt = full
    # sorted by (source position, node); the isolated source only visits
    # itself, once per walk (restart) or more (going home)
    key = pos * 7 + node
    assert torch.equal(key, key.sort()[0])
    assert torch.equal(node[pos == 2], torch.tensor([2]))
    assert int(cnt[pos == 2]) >= 200
    # counting only items changes nothing else (same walks)
    keep = node >= 3
    assert torch.equal(items[0], full[0][:, keep])
    assert torch.equal(items[1], cnt[keep])
    # item 2 (node 5) is unreachable
    assert not bool((node == 5).any())


def test_errors():
    rowptr, col = _graph()
    s = torch.tensor([0])
    with pytest.raises(ValueError, match='1-D CSR row pointer'):
        random_walk(rowptr.view(1, -1), col, s, 3)
    with pytest.raises(ValueError, match=r'need 0 <= restart_prob < 1'):
        random_walk(rowptr, col, s, 3, restart_prob=1.0)
    with pytest.raises(ValueError, match=r'need 0 < restart_prob < 1'):
        rwr_visits(rowptr, col, s, 10, restart_prob=0.0)
    with pytest.raises(ValueError, match=r'start nodes must lie in \[0, 7\)'):
        random_walk(rowptr, col, torch.tensor([7]), 3)
    with pytest.raises(ValueError, match='walk_length must be >= 0'):
        random_walk(rowptr, col, s, -1)
    with pytest.raises(ValueError, match='num_walks must be positive'):
        rwr_visits(rowptr, col, s, 0)


# A bipartite user-item graph: users 0..3, items 4..8 (item 8 has no user).
UI = [(0, 0), (0, 1), (1, 1), (1, 2), (2, 2), (2, 3), (3, 0), (3, 3),
      (3, 1)]
NU, NI = 4, 5


def _bipartite():
    pairs = torch.tensor(UI).t()
    adj = NormAdj.from_edge_index(pairs, NU, NI)
    is_item = torch.arange(NU + NI) >= NU
    return adj.rowptr.long(), adj.col.long(), is_item


def _exact_item_visits(alpha: float) -> torch.Tensor:
    """Expected visits of item -> user -> item walks stopping with
    probability alpha on each item: sum_t (1-a)^t P2^t, P2 the two-step
    item-to-item transition (an item without users goes home)."""
    R = torch.zeros(NU, NI, dtype=torch.float64)
    for u, i in UI:
        R[u, i] = 1
    P2 = (R.t() / R.sum(0).clamp(min=1)[:, None]) @ (
        R / R.sum(1).clamp(min=1)[:, None])
    dangling = R.sum(0) == 0
    P2[dangling, dangling] = 1.0
    return torch.linalg.inv(torch.eye(NI, dtype=torch.float64)
                            - (1 - alpha) * P2)


def test_stop_mask_gives_the_two_step_item_walk():
    rowptr, col, is_item = _bipartite()
    alpha, walks = 0.4, 20000
    src = torch.arange(NI) + NU
    (pos, node), cnt = rwr_visits(rowptr, col, src, walks, alpha,
                                  torch.Generator().manual_seed(0),
                                  count=is_item, stop_at=is_item)
    assert bool(is_item[node].all())
    est = torch.zeros(NI, NI, dtype=torch.float64)
    est[pos, node - NU] = cnt.double() / walks
    exact = _exact_item_visits(alpha)
    assert torch.allclose(est, exact, atol=0.06), (est - exact).abs().max()
    # the isolated item only ever visits itself: 1 / alpha visits
    assert est[4].nonzero().view(-1).tolist() == [4]


def test_importance_neighbors_are_the_most_visited_other_items():
    rowptr, col, is_item = _bipartite()
    alpha = 0.5
    src = torch.tensor([0, 1, 3, 4]) + NU
    nbr, w = importance_neighbors(rowptr, col, src, 2, num_walks=20000,
                                  restart_prob=alpha,
                                  generator=torch.Generator().manual_seed(1),
                                  count=is_item, stop_at=is_item)
    assert nbr.shape == w.shape == (4, 2)
    exact = _exact_item_visits(alpha)
    for row, s in enumerate([0, 1, 3]):
        ex = exact[s].clone()
        ex[s] = -1  # never its own neighbour
        want = torch.argsort(-ex)[:2] + NU
        assert nbr[row].tolist() == want.tolist()
        # weights: the visit counts, close to walks * expected visits
        assert torch.allclose(w[row].double() / 20000, ex[want - NU],
                              atol=0.05)
        assert bool((w[row, :-1] >= w[row, 1:]).all())
    # the isolated item has no neighbour: padding
    assert nbr[3].tolist() == [-1, -1] and w[3].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match='num_neighbors must be >= 1'):
        importance_neighbors(rowptr, col, src, 0)


def test_importance_neighbors_ties_go_to_the_lower_id():
    # a star: item 0's only user also has items 1, 2, 3: equal visits
    pairs = torch.tensor([[0, 0, 0, 0], [0, 1, 2, 3]])
    adj = NormAdj.from_edge_index(pairs, 1, 4)
    is_item = torch.arange(5) >= 1
    nbr, w = importance_neighbors(adj.rowptr, adj.col, torch.tensor([1]), 3,
                                  num_walks=1, restart_prob=0.999,
                                  count=is_item, stop_at=is_item)
    # one walk that (almost surely) stops at once: no other item visited
    assert nbr.tolist() == [[-1, -1, -1]]
    cnt = torch.tensor([5, 7, 5, 5])
    pos = torch.zeros(4, dtype=torch.long)
    order, rank = rank_visits(pos, cnt, 1)
    assert order.tolist() == [1, 0, 2, 3] and rank.tolist() == [0, 1, 2, 3]
    order, _ = rank_visits(pos, cnt, 1, random_ties=True,
                           generator=torch.Generator().manual_seed(0))
    assert order[0] == 1 and sorted(order[1:].tolist()) == [0, 2, 3]
