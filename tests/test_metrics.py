import logging
import math

import pytest
import torch

from pyg_recsys import metrics as metrics_module
from pyg_recsys.metrics import (
    RANKING_METRICS,
    RankingMetrics,
    auc,
    evaluate_ranking,
    rating_metrics,
)
from pyg_recsys.ops import topk as topk_module
from pyg_recsys.ops.csr import CSR
from pyg_recsys.ops.topk import masked_topk


def random_case(seed, num_users=40, num_items=25):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.rand(num_users, num_items, generator=gen,
                        dtype=torch.float64)  # ties: probability 0
    excl = torch.rand(num_users, num_items, generator=gen) < 0.3
    excl[0, :-3] = True  # only 3 items left: padded lists
    targ = (torch.rand(num_users, num_items, generator=gen) < 0.2) & ~excl
    targ[0, -1] = True
    targ[1:4] = False  # users without targets
    targ[4] = ~excl[4]  # every rankable item is a target
    targ[5, 0] = excl[5, 0] = True  # a target that is also excluded
    exclude = CSR.from_pairs(*excl.nonzero().t(), num_users, num_items)
    targets = CSR.from_pairs(*targ.nonzero().t(), num_users, num_items)
    return scores, targets, exclude


def reference(scores, targets, exclude, ks):
    """Per-user Python loop over the dense scores, straight from the
    formulas (independent of the library code)."""
    sums = {f'{m}@{k}': 0.0 for m in RANKING_METRICS for k in ks}
    n_users = 0
    for u in range(scores.size(0)):
        pos = set(targets.row(u).tolist())
        if not pos:
            continue
        n_users += 1
        banned = set(exclude.row(u).tolist()) if exclude is not None else ()
        order = sorted((i for i in range(scores.size(1)) if i not in banned),
                       key=lambda i: -float(scores[u, i]))
        for k in ks:
            rel = [1 if i in pos else 0 for i in order[:k]]
            n_hit = sum(rel)
            sums[f'recall@{k}'] += n_hit / len(pos)
            sums[f'precision@{k}'] += n_hit / k
            sums[f'hit@{k}'] += float(n_hit > 0)
            dcg = sum(r / math.log2(i + 2) for i, r in enumerate(rel))
            idcg = sum(1 / math.log2(i + 2)
                       for i in range(min(len(pos), k)))
            sums[f'ndcg@{k}'] += dcg / idcg
            first = rel.index(1) if n_hit else None
            sums[f'mrr@{k}'] += 1 / (first + 1) if n_hit else 0.0
            ap = sum(rel[i] * sum(rel[:i + 1]) / (i + 1)
                     for i in range(len(rel)))
            sums[f'map@{k}'] += ap / min(len(pos), k)
    return {key: value / n_users for key, value in sums.items()}


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_evaluate_ranking_matches_reference(seed):
    scores, targets, exclude = random_case(seed)
    ks = (1, 3, 10, 30)  # 30 > num_items: padded lists
    out = evaluate_ranking(lambda u: scores[u], targets, exclude, ks=ks,
                           batch_size=7)
    ref = reference(scores, targets, exclude, ks)
    assert out.keys() == ref.keys()
    for key in ref:
        assert out[key] == pytest.approx(ref[key], abs=1e-12), key


def test_evaluate_ranking_without_exclude():
    scores, targets, _ = random_case(5)
    out = evaluate_ranking(lambda u: scores[u], targets, None, ks=(5,))
    ref = reference(scores, targets, None, (5,))
    for key in ref:
        assert out[key] == pytest.approx(ref[key], abs=1e-12), key


@pytest.mark.parametrize('seed', [0, 1])
def test_evaluate_ranking_independent_of_batch_size(seed):
    scores, targets, exclude = random_case(seed)
    outs = [
        evaluate_ranking(lambda u: scores[u], targets, exclude, ks=(3, 10),
                         batch_size=bs)
        for bs in (1, 2, 7, 16, 1000)
    ]
    for out in outs[1:]:
        assert out == outs[0]  # exact


def test_evaluate_ranking_groups_and_blocks(monkeypatch):
    # several user groups, chunks straddling them, several metric blocks
    monkeypatch.setattr(topk_module, 'GROUP_USERS', 8)
    monkeypatch.setattr(metrics_module, '_SERIAL_NUMEL', 50)
    scores, targets, exclude = random_case(7)
    ks = (2, 10)
    ref = reference(scores, targets, exclude, ks)
    outs = [
        evaluate_ranking(lambda u: scores[u], targets, exclude, ks=ks,
                         batch_size=bs) for bs in (1, 3, 8, None, 100)
    ]
    for out in outs:
        assert out == outs[0]
    for key in ref:
        assert outs[0][key] == pytest.approx(ref[key], abs=1e-12), key


def test_evaluate_ranking_explicit_users():
    scores, targets, exclude = random_case(8)
    users = torch.tensor([9, 1, 4, 30, 2])  # 1 and 2 have no targets
    out = evaluate_ranking(lambda u: scores[u], targets, exclude, ks=(5,),
                           users=users)
    keep = torch.zeros(scores.size(0), dtype=torch.bool)
    keep[users] = True
    rows, cols = targets.rows(), targets.col
    sub = CSR.from_pairs(rows[keep[rows]], cols[keep[rows]],
                         scores.size(0), scores.size(1))
    ref = reference(scores, sub, exclude, (5,))
    for key in ref:
        assert out[key] == pytest.approx(ref[key], abs=1e-12), key


def test_hand_computed_case():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5],
                           [0.1, 0.2, 0.3, 0.4, 0.5],
                           [0.5, 0.4, 0.3, 0.2, 0.1]])
    exclude = CSR.from_pairs(torch.tensor([0]), torch.tensor([0]), 3, 5)
    # user 0 ranks [1, 2, 3, 4] -> hits at ranks 2 and 4
    # user 1 ranks [4, 3, 2, 1, 0] -> hit at rank 1; user 2 has no targets
    targets = CSR.from_pairs(torch.tensor([0, 0, 1]),
                             torch.tensor([2, 4, 4]), 3, 5)
    out = evaluate_ranking(lambda u: scores[u], targets, exclude, ks=(2, 4))
    d2, d3, d4 = 1.0, 1 / math.log2(3), 1 / math.log2(5)  # 1/log2(i+2)
    expected = {
        'recall@2': (0.5 + 1) / 2, 'recall@4': (1 + 1) / 2,
        'precision@2': (0.5 + 0.5) / 2, 'precision@4': (0.5 + 0.25) / 2,
        'hit@2': 1.0, 'hit@4': 1.0,
        'ndcg@2': (d3 / (d2 + d3) + 1) / 2,
        'ndcg@4': ((d3 + d4) / (d2 + d3) + 1) / 2,
        'mrr@2': (0.5 + 1) / 2, 'mrr@4': (0.5 + 1) / 2,
        'map@2': (0.5 * 0.5 + 1) / 2,
        'map@4': (0.5 * (0.5 + 0.5) + 1) / 2,
    }
    assert out.keys() == expected.keys()
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, abs=1e-12), key
    assert out['ndcg@2'] == pytest.approx(0.6934264036, abs=1e-9)
    assert out['map@2'] == 0.625


def pyg_reference(items, targets, users, ks):
    """PyG's LinkPred* metrics on the same top-k lists."""
    lp = pytest.importorskip('torch_geometric.metrics.link_pred')
    classes = dict(recall=lp.LinkPredRecall, precision=lp.LinkPredPrecision,
                   ndcg=lp.LinkPredNDCG, mrr=lp.LinkPredMRR,
                   map=lp.LinkPredMAP, hit=lp.LinkPredHitRatio)
    row, col = targets.select(users)
    label_index = torch.stack([row, col])
    # PyG has no padding: it matches -1 as item max_index - 1 of the
    # previous row. Map our padding to an id no target has.
    pred = items.masked_fill(items < 0, targets.num_cols)
    out = {}
    for name, cls in classes.items():
        for k in ks:
            metric = cls(k)
            metric.update(pred, label_index)
            out[f'{name}@{k}'] = float(metric.compute())
    return out


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_agrees_with_pyg_link_pred(seed):
    scores, targets, exclude = random_case(seed)
    ks = (1, 3, 10, 20)
    users = torch.arange(scores.size(0))
    _, items = masked_topk(scores.clone(), 20, users, exclude)
    assert (items[0] == -1).any()  # the case exercises padding
    ours = RankingMetrics(ks)
    ours.update(items, users, targets)
    out = ours.compute()
    ref = pyg_reference(items, targets, users, ks)
    assert out.keys() == ref.keys()
    for key in ref:  # PyG sums in float32
        assert out[key] == pytest.approx(ref[key], abs=1e-6), key


def test_padding_is_never_a_hit():
    # user 1's padding (-1) would match user 0's item 3 (= num_cols - 1)
    # under a naive row * num_cols + col membership test
    targets = CSR.from_pairs(torch.tensor([0, 1]), torch.tensor([3, 0]),
                             2, 4)
    items = torch.tensor([[3, 1], [2, -1]])
    acc = RankingMetrics(ks=(2,), metrics=('hit', 'recall'))
    acc.update(items, torch.tensor([0, 1]), targets)
    assert acc.compute() == {'hit@2': 0.5, 'recall@2': 0.5}


def test_ranking_metrics_accumulates_and_resets():
    scores, targets, exclude = random_case(0)
    users = torch.arange(scores.size(0))
    _, items = masked_topk(scores.clone(), 10, users, exclude)
    acc = RankingMetrics(ks=(10, 5), metrics=('ndcg', 'recall'))
    assert acc.keys == ['ndcg@5', 'ndcg@10', 'recall@5', 'recall@10']
    acc.update(items[:9], users[:9], targets)
    acc.update(items[9:], users[9:], targets)
    whole = RankingMetrics(ks=(5, 10), metrics=('ndcg', 'recall'))
    whole.update(items, users, targets)
    assert acc.compute() == whole.compute()
    assert acc.num_users == int((targets.degree() > 0).sum())
    ref = reference(scores, targets, exclude, (5, 10))
    assert acc.compute()['ndcg@5'] == pytest.approx(ref['ndcg@5'],
                                                    abs=1e-12)
    acc.reset()
    assert acc.num_users == 0


def test_compute_without_users_warns(caplog):
    acc = RankingMetrics(ks=(2,), metrics=('recall',))
    targets = CSR.from_pairs(torch.tensor([1]), torch.tensor([0]), 2, 3)
    acc.update(torch.tensor([[0, 1]]), torch.tensor([0]), targets)
    with caplog.at_level(logging.WARNING, logger='pyg_recsys.metrics'):
        assert acc.compute() == {'recall@2': 0.0}
    assert 'no user with targets' in caplog.text


def test_ranking_metrics_errors():
    with pytest.raises(ValueError, match='ks must be positive integers'):
        RankingMetrics(ks=(0, 10))
    with pytest.raises(ValueError, match='ks must be positive integers'):
        RankingMetrics(ks=())
    with pytest.raises(ValueError, match=r"unknown metrics \['auc'\]"):
        RankingMetrics(metrics=('recall', 'auc'))
    acc = RankingMetrics(ks=(3,))
    targets = CSR.from_pairs(torch.tensor([0]), torch.tensor([0]), 2, 4)
    with pytest.raises(ValueError, match=r'shape \[B, >= 3\]'):
        acc.update(torch.tensor([[0, 1]]), torch.tensor([0]), targets)
    with pytest.raises(ValueError, match='got 2 users for 1 rows'):
        acc.update(torch.tensor([[0, 1, 2]]), torch.tensor([0, 1]), targets)
    with pytest.raises(ValueError, match='item id 4 is out of range'):
        acc.update(torch.tensor([[0, 1, 4]]), torch.tensor([0]), targets)


def test_evaluate_ranking_errors():
    targets = CSR.from_pairs(torch.tensor([0]), torch.tensor([0]), 2, 4)
    exclude = CSR.from_pairs(torch.tensor([0]), torch.tensor([0]), 2, 5)
    with pytest.raises(ValueError, match='evaluate_ranking: batch_size'):
        evaluate_ranking(lambda u: torch.zeros(u.numel(), 4), targets, None,
                         batch_size=0)
    with pytest.raises(ValueError, match='exclude has num_cols=5'):
        evaluate_ranking(lambda u: torch.zeros(u.numel(), 4), targets,
                         exclude)
    with pytest.raises(ValueError, match=r'num_items=4\]'):
        evaluate_ranking(lambda u: torch.zeros(u.numel(), 3), targets, None)


def test_rating_metrics():
    out = rating_metrics(torch.tensor([3.0, 4.0, 1.0, 5.0]),
                         torch.tensor([4, 4, 3, 5]))
    assert out['mae'] == pytest.approx(0.75)
    assert out['rmse'] == pytest.approx(math.sqrt(5 / 4))
    with pytest.raises(ValueError, match='rating_metrics: pred and target'):
        rating_metrics(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match='got 0 and 0'):
        rating_metrics(torch.zeros(0), torch.zeros(0))


def brute_auc(pos, neg):
    total = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return total / (len(pos) * len(neg))


def test_auc_matches_pairwise_count():
    gen = torch.Generator().manual_seed(0)
    pos = torch.randint(0, 6, (17,), generator=gen).float()  # many ties
    neg = torch.randint(0, 5, (23,), generator=gen).float()
    assert auc(pos, neg) == pytest.approx(
        brute_auc(pos.tolist(), neg.tolist()), abs=1e-12)
    assert auc(torch.tensor([2., 3.]), torch.tensor([0., 1.])) == 1.0
    assert auc(torch.tensor([1.]), torch.tensor([1.])) == 0.5


def test_auc_per_row():
    gen = torch.Generator().manual_seed(1)
    pos = torch.randint(0, 4, (6,), generator=gen).float()
    neg = torch.randint(0, 4, (6, 5), generator=gen).float()
    ref = sum(brute_auc([p], row) for p, row in
              zip(pos.tolist(), neg.tolist())) / 6
    assert auc(pos, neg) == pytest.approx(ref, abs=1e-12)


def test_auc_errors():
    with pytest.raises(ValueError, match='auc: expected pos'):
        auc(torch.zeros(2, 2), torch.zeros(2))
    with pytest.raises(ValueError, match='one positive and one negative'):
        auc(torch.zeros(0), torch.zeros(3))
    with pytest.raises(ValueError, match='one negative per row'):
        auc(torch.zeros(2), torch.zeros(2, 0))


def test_link_hits_at_k_matches_loop():
    from pyg_recsys.metrics import link_hits_at_k
    gen = torch.Generator().manual_seed(0)
    pos = torch.randint(0, 30, (200,), generator=gen).float()
    neg = torch.randint(0, 30, (60,), generator=gen).float()
    for k in (1, 5, 20, 60):
        kth = sorted(neg.tolist(), reverse=True)[k - 1]
        ref = sum(p > kth for p in pos.tolist()) / len(pos)
        assert link_hits_at_k(pos, neg, k) == pytest.approx(ref)
    assert link_hits_at_k(pos, neg, 61) == 1.0  # fewer negatives than K
    with pytest.raises(ValueError, match='link_hits_at_k: k must be >= 1'):
        link_hits_at_k(pos, neg, 0)
    with pytest.raises(ValueError, match='need at least one positive'):
        link_hits_at_k(pos[:0], neg, 5)


def test_sampled_rank_metrics_against_a_loop():
    from pyg_recsys.metrics import sampled_rank_metrics
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(50, generator=g)
    neg = torch.randn(50, 20, generator=g)
    neg[0, :3] = pos[0]  # ties count against the target
    out = sampled_rank_metrics(pos, neg, ks=(1, 5))
    for b in range(50):
        rank = int((neg[b] >= pos[b]).sum())
        for k in (1, 5):
            hit = float(rank < k)
            assert float(out[f'hit@{k}'][b]) == hit
            assert float(out[f'ndcg@{k}'][b]) == pytest.approx(
                hit / math.log2(rank + 2))
            assert float(out[f'mrr@{k}'][b]) == pytest.approx(
                hit / (rank + 1))
    assert int((neg[0] >= pos[0]).sum()) >= 3
    with pytest.raises(ValueError, match=r'expected pos \[B\] and neg'):
        sampled_rank_metrics(pos, neg[0])


# Filtered link prediction ####################################################

def test_filtered_ranks_match_a_plain_loop():
    from pyg_recsys.metrics import filtered_ranks, link_prediction_metrics
    gen = torch.Generator().manual_seed(0)
    B, E, Q = 6, 9, 4  # queries, entities, query rows
    # integer scores, so that ties occur
    scores = torch.randint(0, 4, (B, E), generator=gen).float()
    target = torch.randint(0, E, (B,), generator=gen)
    rows = torch.randint(0, Q, (B,), generator=gen)
    known_pairs = torch.randint(0, E, (2, 12), generator=gen)
    known_pairs[0] %= Q
    # the true answers are known triples too
    known = CSR.from_pairs(torch.cat([known_pairs[0], rows]),
                           torch.cat([known_pairs[1], target]), Q, E)
    got = filtered_ranks(scores.clone(), target, known, rows)
    for b in range(B):
        answers = set(known.select(rows[b:b + 1])[1].tolist())
        y = int(target[b])
        true = float(scores[b, y])
        greater = sum(1 for e in range(E) if e not in answers
                      and float(scores[b, e]) > true)
        ties = sum(1 for e in range(E) if e not in answers | {y}
                   and float(scores[b, e]) == true)
        assert int(got[b]) == 1 + greater + ties // 2
    sums = link_prediction_metrics(got, ks=(1, 3))
    assert float(sums['mrr']) == pytest.approx(
        sum(1 / int(r) for r in got))
    assert float(sums['hits@3']) == sum(int(r) <= 3 for r in got)
    assert float(sums['mr']) == float(got.sum())


@pytest.mark.parametrize('device_form', [False, True])
def test_filtered_ranks_count_nan_scores_as_ties(monkeypatch, device_form):
    from pyg_recsys.metrics import filtered_ranks
    from pyg_recsys.ops import device as ops_device
    monkeypatch.setattr(ops_device, 'sync_free', lambda device: device_form)
    empty = CSR.from_pairs(torch.tensor([], dtype=torch.long),
                           torch.tensor([], dtype=torch.long), 3, 6)
    nan = float('nan')
    scores = torch.tensor([[3.0, nan, 1.0, 2.0, nan, 2.0],
                           [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
                           [0.0, nan, 9.0, 3.0, 4.0, 5.0]])
    # row 0: true 2.0 (entity 3), one greater, three ties (two NaN):
    # no credit for a NaN; row 1: true 1.0, four greater; row 2: a NaN
    # true score, every entity tied with it: the middle
    rank = filtered_ranks(scores, torch.tensor([3, 1, 1]), empty,
                          torch.tensor([0, 1, 2]))
    assert rank.tolist() == [1 + 1 + 3 // 2, 5, 1 + 6 // 2]


def test_filtered_rank_of_constant_scores_is_the_middle():
    from pyg_recsys.metrics import filtered_ranks
    empty = CSR.from_pairs(torch.tensor([], dtype=torch.long),
                           torch.tensor([], dtype=torch.long), 1, 11)
    rank = filtered_ranks(torch.zeros(1, 11), torch.tensor([3]), empty,
                          torch.tensor([0]))
    assert int(rank) == 6  # 10 ties: 1 + 10 // 2, not 1


# Click-through ###############################################################

def test_click_through_metrics_global_and_as_the_reference():
    from pyg_recsys.metrics import click_through_metrics
    logits = torch.tensor([2.0, -1.0, 0.5, -0.5, 1.0, -2.0, 0.2])
    labels = torch.tensor([1, 0, 0, 1, 1, 0, 1])

    def plain_auc(lg, y):  # pairs of (positive, negative), ties half
        pos = [a for a, b in zip(lg, y) if b]
        neg = [a for a, b in zip(lg, y) if not b]
        won = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
        return won / (len(pos) * len(neg))

    def plain_f1(lg, y):
        pred = [a >= 0 for a in lg]
        tp = sum(p and t for p, t in zip(pred, y))
        fp = sum(p and not t for p, t in zip(pred, y))
        fn = sum(t and not p for p, t in zip(pred, y))
        return 2 * tp / (2 * tp + fp + fn)

    lg, y = logits.tolist(), labels.tolist()
    got = click_through_metrics(logits, labels, batch_size=3)
    assert got['auc'] == pytest.approx(plain_auc(lg, y))
    assert got['f1'] == pytest.approx(plain_f1(lg, y))
    # batches [0:3] and [3:6]; the last row (a partial batch) dropped
    want_auc = (plain_auc(lg[:3], y[:3]) + plain_auc(lg[3:6], y[3:6])) / 2
    want_f1 = (plain_f1(lg[:3], y[:3]) + plain_f1(lg[3:6], y[3:6])) / 2
    assert got['auc_batches'] == pytest.approx(want_auc)
    assert got['f1_batches'] == pytest.approx(want_f1)
    assert 'auc_batches' not in click_through_metrics(logits, labels)
    with pytest.raises(ValueError, match='both classes'):
        click_through_metrics(logits, torch.ones(7))
