import math
import random

import pytest
import torch
from torch_geometric.data import HeteroData

from pyg_recsys.data import (
    Interactions,
    Split,
    audit,
    file_split,
    fixed_split,
    from_tensors,
    leave_one_out,
    random_split,
    temporal_split,
)
from pyg_recsys.data.split import co_interactions
from pyg_recsys.schema import ITEM_ITEM, USER_USER


def make_log(num_users=30, num_items=25, seed=0, ties=False):
    """Random unique pairs with ratings and times; some tiny users."""
    rng = random.Random(seed)
    rows = []
    for u in range(num_users):
        deg = rng.choice([1, 2, 3, 4, 5, 7, 10, 13])
        for i in rng.sample(range(num_items), deg):
            t = rng.randrange(5) if ties else rng.randrange(10 ** 6)
            rows.append((u, i, float(rng.randrange(1, 6)), t))
    rng.shuffle(rows)
    user, item, rating, time = zip(*rows)
    return from_tensors(list(user), list(item), list(rating), list(time))


def part_sets(split):
    return {name: {tuple(p) for p in split.part(name).t().tolist()}
            for name in ('train', 'val', 'test')}


def check_partition(split, inter):
    sets = part_sets(split)
    for name, s in sets.items():
        assert len(s) == split.part(name).size(1)  # unique within a part
    assert not sets['train'] & sets['val']
    assert not sets['train'] & sets['test']
    assert not sets['val'] & sets['test']
    everything = {(u, i) for u, i in zip(inter.user.tolist(),
                                         inter.item.tolist())}
    assert sets['train'] | sets['val'] | sets['test'] == everything
    audit(split)
    return sets


def per_user(pairs):
    out = {}
    for u, i in pairs:
        out.setdefault(u, set()).add(i)
    return out


# -- random ----------------------------------------------------------------

def reference_counts(n, r_val, r_test):
    """Documented rounding, written as a plain per-user rule."""
    if n < 3:
        return 0, 0
    lo_t, lo_v = int(r_test > 0), int(r_val > 0)
    t = max(lo_t, math.floor(n * r_test + 0.5))
    v = max(lo_v, math.floor(n * r_val + 0.5))
    while t + v > n - 1:
        if t > lo_t:
            t -= 1
        else:
            v -= 1
    return v, t


@pytest.mark.parametrize('ratios', [(0.8, 0.1, 0.1), (0.6, 0.2, 0.2),
                                    (0.2, 0.4, 0.4), (0.7, 0.0, 0.3)])
def test_random_split_counts_match_per_user_rule(ratios):
    inter = make_log()
    split = random_split(inter, ratios, seed=3)
    sets = check_partition(split, inter)
    degree = per_user(zip(inter.user.tolist(), inter.item.tolist()))
    val, test = per_user(sets['val']), per_user(sets['test'])
    train = per_user(sets['train'])
    for u, items in degree.items():
        v, t = reference_counts(len(items), ratios[1], ratios[2])
        assert len(val.get(u, ())) == v
        assert len(test.get(u, ())) == t
        assert len(train[u]) >= 1
    assert split.kind == 'random' and split.seed == 3
    assert split.info['ratios'] == list(ratios)


def test_random_split_is_seeded_and_random():
    inter = make_log()
    a = random_split(inter, seed=1)
    b = random_split(inter, seed=1)
    c = random_split(inter, seed=2)
    torch.manual_seed(0)
    d = random_split(inter, seed=1)  # the global RNG plays no part
    assert torch.equal(a.test, b.test) and torch.equal(a.val, b.val)
    assert torch.equal(a.test, d.test)
    assert not torch.equal(a.test, c.test)


def test_random_split_attrs_follow_pairs():
    inter = make_log()
    split = random_split(inter)
    lookup = {(u, i): (r, t) for u, i, r, t in zip(
        inter.user.tolist(), inter.item.tolist(), inter.rating.tolist(),
        inter.time.tolist())}
    for name in ('train', 'val', 'test'):
        pairs = split.part(name).t().tolist()
        got = list(zip(split.attrs[name]['rating'].tolist(),
                       split.attrs[name]['time'].tolist()))
        assert got == [lookup[tuple(p)] for p in pairs]
    graph = split.graph()
    assert torch.equal(graph['user', 'interacts', 'item'].rating,
                       split.attrs['train']['rating'])


def test_split_errors():
    inter = make_log()
    with pytest.raises(ValueError, match=r'random_split: ratios must be '
                       r'three non-negative numbers'):
        random_split(inter, (0.8, 0.3, 0.1))
    with pytest.raises(ValueError, match='ratios must be three'):
        random_split(inter, (0.5, 0.5))
    with pytest.raises(ValueError, match='ratios must be three'):
        random_split(inter, None)
    dup = Interactions(torch.tensor([0, 0]), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match=r'random_split: the interactions '
                       r'repeat some \(user, item\) pairs'):
        random_split(dup)
    with pytest.raises(ValueError, match='leave_one_out: the interactions '
                       'repeat'):
        leave_one_out(dup)


# -- temporal --------------------------------------------------------------

def test_temporal_split_quantiles_and_cuts():
    n = 100
    gen = torch.Generator().manual_seed(0)
    user = torch.randint(0, 7, (n,), generator=gen)
    item = torch.randperm(n, generator=gen)  # all pairs unique
    time = torch.randperm(n, generator=gen)
    inter = from_tensors(user, item, time=time)
    split = temporal_split(inter)
    check_partition(split, inter)
    assert split.cut_time == (80, 90)
    assert split.kind == 'temporal'
    for name, (lo, hi) in (('train', (0, 80)), ('val', (80, 90)),
                           ('test', (90, 100))):
        times = split.attrs[name]['time']
        assert times.numel() == hi - lo
        assert int(times.min()) >= lo and int(times.max()) < hi
    split = temporal_split(inter, cut_times=(50, 50))
    assert split.val.size(1) == 0 and split.test.size(1) == 50
    split = temporal_split(inter, ratios=(1.0, 0.0, 0.0))
    assert split.train.size(1) == n and split.cut_time[0] == math.inf


def test_temporal_split_reference_loop_and_cold_counts():
    inter = make_log(ties=True)
    split = temporal_split(inter, cut_times=(2, 4))
    sets = check_partition(split, inter)
    for u, i, t in zip(inter.user.tolist(), inter.item.tolist(),
                       inter.time.tolist()):
        name = 'train' if t < 2 else 'val' if t < 4 else 'test'
        assert (u, i) in sets[name]
    train_users = {u for u, _ in sets['train']}
    cold = {u for u, _ in sets['test']} - train_users
    assert split.info['test_cold_users'] == len(cold)


def test_temporal_split_errors():
    with pytest.raises(ValueError, match='temporal_split: the interactions '
                       'have no time'):
        temporal_split(from_tensors([1], [2]))
    inter = make_log()
    with pytest.raises(ValueError, match=r'cut_times must be \(t_val, '
                       r't_test\) with t_val <= t_test'):
        temporal_split(inter, cut_times=(5, 1))
    with pytest.raises(ValueError, match='temporal_split: ratios must'):
        temporal_split(inter, ratios=(1, 1, 1))


# -- leave-one-out ---------------------------------------------------------

def naive_leave_one_out(inter, use_time=True):
    rows = {}
    for pos, (u, i) in enumerate(zip(inter.user.tolist(),
                                     inter.item.tolist())):
        t = inter.time[pos].item() if use_time else 0
        rows.setdefault(u, []).append((t, pos, i))
    out = {'train': set(), 'val': set(), 'test': set()}
    for u, seq in rows.items():
        seq.sort()
        items = [i for _, _, i in seq]
        if len(items) < 3:
            out['train'] |= {(u, i) for i in items}
            continue
        out['test'].add((u, items[-1]))
        out['val'].add((u, items[-2]))
        out['train'] |= {(u, i) for i in items[:-2]}
    return out


def test_leave_one_out_matches_loop_with_ties():
    inter = make_log(ties=True)
    split = leave_one_out(inter)
    assert check_partition(split, inter) == naive_leave_one_out(inter)
    assert split.info['order'] == 'time'


def test_leave_one_out_file_order_without_time():
    inter = from_tensors([5, 5, 5, 5, 6, 6], [9, 3, 7, 1, 1, 2])
    split = leave_one_out(inter)
    assert part_sets(split) == naive_leave_one_out(inter, use_time=False)
    assert split.test.t().tolist() == [[0, 0]]  # user 5's last row: item 1
    assert split.val.t().tolist() == [[0, 3]]  # second to last: item 7
    assert split.info['order'] == 'file'


# -- fixed -----------------------------------------------------------------

def test_fixed_split_carves_validation_per_user():
    rng = random.Random(0)
    train, test = [], []
    for u in range(20):
        items = rng.sample(range(40), rng.choice([1, 2, 5, 11, 20]))
        train += [(u, i) for i in items]
        test += [(u, i) for i in rng.sample(sorted(set(range(40))
                                                   - set(items)), 2)]
    train_t = torch.tensor(train).t()
    test_t = torch.tensor(test).t()
    split = fixed_split(train_t, test_t, 20, 40, val_ratio=0.25, seed=1)
    sets = part_sets(split)
    assert sets['test'] == set(test)
    assert sets['train'] | sets['val'] == set(train)
    audit(split)
    given = per_user(train)
    val = per_user(sets['val'])
    for u, items in given.items():
        n = len(items)
        want = 0 if n < 2 else min(max(1, math.floor(n * .25 + .5)), n - 1)
        assert len(val.get(u, ())) == want
    again = fixed_split(train_t, test_t, 20, 40, val_ratio=0.25, seed=1)
    assert torch.equal(again.val, split.val)
    other = fixed_split(train_t, test_t, 20, 40, val_ratio=0.25, seed=2)
    assert not torch.equal(other.val, split.val)
    none = fixed_split(train_t, test_t, 20, 40, val_ratio=0.0)
    assert none.val.size(1) == 0 and part_sets(none)['train'] == set(train)
    assert split.kind == 'fixed' and split.info['val_ratio'] == 0.25


def test_fixed_split_duplicates_and_errors():
    train = torch.tensor([[0, 0, 0, 1], [1, 1, 2, 3]])
    test = torch.tensor([[0], [3]])
    split = fixed_split(train, test, 2, 4, val_ratio=0.0)
    assert split.info['train_duplicates'] == 1
    assert split.train.size(1) == 3
    with pytest.raises(ValueError, match=r'fixed_split: 1 test pairs are '
                       r'also training pairs \(e.g. user 0, item 1\)'):
        fixed_split(train, torch.tensor([[0], [1]]), 2, 4)
    with pytest.raises(ValueError, match=r'fixed_split: test must be a '
                       r'\[2, E\] integer tensor'):
        fixed_split(train, torch.tensor([0, 1]), 2, 4)
    with pytest.raises(ValueError, match=r'fixed_split: train item ids must '
                       r'lie in \[0, 3\)'):
        fixed_split(train, test, 2, 3)
    with pytest.raises(ValueError, match=r'val_ratio must lie in \[0, 1\)'):
        fixed_split(train, test, 2, 4, val_ratio=1.0)


def _with_ids(inter):
    """The log with string original ids (``u<k>``, ``i<k>``)."""
    import numpy as np
    inter.user_ids = np.array([f'u{k}' for k in range(inter.num_users)])
    inter.item_ids = np.array([f'i{k}' for k in range(inter.num_items)])
    return inter


def test_file_split_takes_the_parts_of_the_file(tmp_path):
    inter = _with_ids(make_log(12, 10, seed=3))
    want = random_split(inter, seed=5)
    names = {'train': 'train', 'val': 'valid', 'test': 'test'}  # RecBole's
    lines = ['user\titem\tpart']
    for name, pairs in part_sets(want).items():
        lines += [f'u{u}\ti{i}\t{names[name]}' for u, i in sorted(pairs)]
    path = tmp_path / 'split.tsv'
    path.write_text('\n'.join(lines[:1] + lines[:0:-1]) + '\n')  # any order
    got = file_split(inter, str(path))
    assert part_sets(got) == part_sets(want)
    assert got.kind == 'file' and got.info['file'] == str(path)
    assert audit(got)['edge_types']
    # the interactions' ratings / times travel with their parts
    assert torch.equal(got.attrs['test']['rating'],
                       want.attrs['test']['rating'])


def test_file_split_refuses_a_file_that_is_not_the_log(tmp_path):
    inter = _with_ids(from_tensors([0, 0, 1], [0, 1, 1]))
    path = tmp_path / 's.tsv'

    def check(text, match):
        path.write_text(text)
        with pytest.raises(ValueError, match=match):
            file_split(inter, str(path))

    ok = 'u0\ti0\ttrain\nu0\ti1\ttest\n'
    check(ok + 'u1\ti1\tval\nu1\ti0\ttrain\n',
          r'line 4: \(u1, i0\) is not an interaction of the data set')
    check(ok + 'u1\ti1\tval\nu0\ti1\ttrain\n',
          r'line 4: \(u0, i1\) is listed twice')
    check(ok + 'u1\ti1\tdev\n', r'line 3: expected user<TAB>item<TAB>part'
          r' with part one of')
    check(ok, r'1 interactions of the data set are not in the file \(e.g. '
          r'user u1, item i1\)')
    check(ok + 'u9\ti1\ttest\n', r'line 3: \(u9, i1\) is not an '
          r'interaction')
    with pytest.raises(FileNotFoundError, match='no such file'):
        file_split(inter, str(tmp_path / 'missing.tsv'))


# -- audit -----------------------------------------------------------------

def manual(train, val, test, num_users=3, num_items=4):
    t = lambda p: torch.tensor(p, dtype=torch.long).view(-1, 2).t()  # noqa
    return Split(num_users, num_items, t(train), t(val), t(test), 'manual')


def test_audit_passes_clean_split_and_reports_what_it_checked():
    split = manual([(0, 0), (1, 1)], [(0, 1)], [(2, 3)])
    report = audit(split)
    assert report['edge_types'] == ['user__interacts__item',
                                    'item__rev_interacts__user']
    assert split.audit() == report
    # the same split with the validation pair also in train fails
    split.train = torch.tensor([[0, 1, 0], [0, 1, 1]])
    with pytest.raises(ValueError, match='in both train and val'):
        audit(split)


@pytest.mark.parametrize('parts,message', [
    (([(0, 0), (0, 0)], [], []),
     r'1 pairs repeat within train \(e.g. user 0, item 0\)'),
    (([(0, 0)], [(0, 0)], []),
     r'1 pairs are in both train and val \(e.g. user 0, item 0\)'),
    (([(0, 0)], [], [(0, 0)]), r'1 pairs are in both train and test'),
    (([(0, 1)], [(2, 2)], [(2, 2)]), r'1 pairs are in both val and test'),
    (([(0, 4)], [], []), r'train item ids must lie in \[0, 4\), got \[4, 4\]'),
    (([], [(3, 0)], []), r'val user ids must lie in \[0, 3\)'),
])
def test_audit_reports_each_problem(parts, message):
    with pytest.raises(ValueError, match='audit: ' + message):
        audit(manual(*parts))


def test_audit_bad_shape():
    split = manual([(0, 0)], [], [])
    split.val = torch.zeros(3, 1, dtype=torch.long)
    with pytest.raises(ValueError, match=r'audit: val must be a \[2, E\]'):
        audit(split)


@pytest.mark.parametrize('direction', ['forward', 'reverse'])
def test_audit_catches_held_out_pair_in_graph(direction):
    split = manual([(0, 0), (1, 1)], [(0, 1)], [(2, 3)])
    clean = split.graph()

    def leaky_graph():
        data = HeteroData()
        data['user'].num_nodes = 3
        data['item'].num_nodes = 4
        fwd = clean['user', 'interacts', 'item'].edge_index
        leak = torch.tensor([[2], [3]])  # a test pair
        if direction == 'forward':
            data['user', 'interacts', 'item'].edge_index = torch.cat(
                [fwd, leak], 1)
            data['item', 'rev_interacts', 'user'].edge_index = fwd.flip(0)
        else:
            data['user', 'interacts', 'item'].edge_index = fwd
            data['item', 'rev_interacts', 'user'].edge_index = torch.cat(
                [fwd, leak], 1).flip(0)
        data['user', 'trusts', 'user'].edge_index = torch.tensor([[0], [2]])
        return data

    split.graph = leaky_graph
    edge = ("('user', 'interacts', 'item')" if direction == 'forward' else
            "('item', 'rev_interacts', 'user')")
    with pytest.raises(ValueError, match=(
            r'audit: 1 test pairs are message-passing edges '
            + edge.replace('(', r'\(').replace(')', r'\)')
            + r' of split.graph\(\) \(e.g. user 2, item 3\)')):
        audit(split)


def test_splits_on_larger_log_pass_audit():
    gen = torch.Generator().manual_seed(0)
    key = torch.unique(torch.randint(0, 5000 * 4000, (200_000,),
                                     generator=gen))
    inter = Interactions(key // 4000, key % 4000,
                         time=torch.randint(0, 10 ** 6, (key.numel(),),
                                            generator=gen))
    for split in (random_split(inter), leave_one_out(inter),
                  temporal_split(inter)):
        audit(split)
        assert sum(split.part(p).size(1) for p in ('train', 'val', 'test')) \
            == len(inter)


def test_global_random_split_fractions_and_cold_counts():
    inter = make_log(num_users=40, seed=3)
    split = random_split(inter, (0.6, 0.2, 0.2), seed=1, per_user=False)
    check_partition(split, inter)
    n = len(inter)
    assert split.train.size(1) == math.floor(n * 0.6 + 0.5)
    assert split.val.size(1) == math.floor(n * 0.8 + 0.5) - \
        split.train.size(1)
    assert split.info['per_user'] is False
    train_users = set(split.train[0].tolist())
    cold = {u for u in split.test[0].tolist() if u not in train_users}
    assert split.info['test_cold_users'] == len(cold)
    again = random_split(inter, (0.6, 0.2, 0.2), seed=1, per_user=False)
    assert torch.equal(again.test, split.test)
    audit(split)


def with_side(split, **kw):
    for key, value in kw.items():
        setattr(split, key, value)
    return split


def test_side_relations_are_in_the_graph_and_never_held_out():
    inter = make_log(seed=4)
    split = random_split(inter, seed=0)
    trust = torch.tensor([[0, 1, 2], [1, 2, 0]])
    split.side = {USER_USER: trust}
    split.x = {'item': torch.randn(split.num_items, 3)}
    g = split.graph()
    assert torch.equal(g['user', 'trusts', 'user'].edge_index, trust)
    assert torch.equal(g['user', 'rev_trusts', 'user'].edge_index,
                       trust.flip(0))
    assert g['item'].x.shape == (split.num_items, 3)
    assert g.orig_ids['user'].tolist() == inter.user_ids.tolist()
    assert g['user', 'interacts', 'item'].rating.numel() == \
        split.train.size(1)
    report = audit(split)
    assert 'user__rev_trusts__user' in report['edge_types']
    assert split.meta()['side'] == {'edge_types': 1, 'edges': 3}


def test_audit_catches_leak_through_a_side_user_item_relation():
    split = manual([(0, 0), (1, 1)], [(0, 1)], [(2, 3)])
    split.side = {('user', 'clicked', 'item'): torch.tensor([[2], [3]])}
    with pytest.raises(ValueError, match=r"1 test pairs are message-passing "
                       r"edges \('user', 'clicked', 'item'\)"):
        audit(split)
    # only the reverse edge type carries it: still caught
    split.side = {('item', 'shown_to', 'user'): torch.tensor([[1], [0]])}
    with pytest.raises(ValueError, match=r"1 val pairs are message-passing "
                       r"edges \('item', 'shown_to', 'user'\)"):
        audit(split)


def test_co_interactions_match_dense_product():
    gen = torch.Generator().manual_seed(0)
    pairs = torch.stack([torch.randint(0, 20, (150,), generator=gen),
                         torch.randint(0, 15, (150,), generator=gen)])
    R = torch.zeros(20, 15)
    R[pairs[0], pairs[1]] = 1
    C = R.t() @ R
    C.fill_diagonal_(0)
    for block in (1 << 24, 7, 1):  # one block, several, one item each
        ei, w = co_interactions(pairs, 20, 15, max_pairs=block)
        dense = torch.zeros(15, 15)
        dense[ei[0], ei[1]] = w.float()
        assert torch.equal(dense, C)
    ei, w = co_interactions(pairs, 20, 15, min_count=2)
    assert bool((w >= 2).all()) and ei.size(1) == int((C >= 2).sum())
    ei, w = co_interactions(pairs, 20, 15, top_k=2)
    for a in range(15):
        row = C[a]
        got = w[ei[0] == a].tolist()
        want = sorted(row[row > 0].tolist(), reverse=True)[:2]
        assert sorted(got, reverse=True) == want
    with pytest.raises(ValueError, match='min_count and top_k must be >= 1'):
        co_interactions(pairs, 20, 15, top_k=0)


def test_co_interactions_of_some_sources_are_their_rows():
    gen = torch.Generator().manual_seed(1)
    pairs = torch.stack([torch.randint(0, 20, (150,), generator=gen),
                         torch.randint(0, 15, (150,), generator=gen)])
    full_ei, full_w = co_interactions(pairs, 20, 15)
    for sources in (torch.tensor([7, 2, 2, 14]), torch.arange(15),
                    torch.tensor([], dtype=torch.long)):
        for block in (1 << 24, 5):
            ei, w = co_interactions(pairs, 20, 15, max_pairs=block,
                                    sources=sources)
            rows = torch.isin(full_ei[0], sources)
            assert torch.equal(ei, full_ei[:, rows])
            assert torch.equal(w, full_w[rows])
    with pytest.raises(ValueError, match=r'co_interactions: sources must '
                       r'lie in \[0, 15\), got \[3, 15\]'):
        co_interactions(pairs, 20, 15, sources=torch.tensor([3, 15]))


def test_audit_checks_the_item_item_graph_comes_from_training():
    split = manual([(0, 0), (0, 1), (1, 1)], [(1, 2)], [(2, 3)])
    assert split.add_co_interactions() is split
    assert split.info['co_interactions']['edges'] == 2
    audit(split)
    g = split.graph()
    assert ('item', 'rev_co_interacts', 'item') not in g.edge_types
    assert g['item', 'co_interacts', 'item'].edge_weight.tolist() == [1, 1]
    # built from all pairs: items 1 and 2 share the held-out user 1
    full = torch.cat([split.train, split.val, split.test], 1)
    split.side = {ITEM_ITEM: co_interactions(full, 3, 4)[0]}
    with pytest.raises(ValueError, match=r'item-item edges .* join items '
                       r'that share no training user \(e.g. items 1 and 2'):
        audit(split)


def test_labelled_rows_and_their_audit():
    split = manual([(0, 0), (1, 1)], [(0, 1)], [(2, 3)])
    split.labelled = {'test': torch.tensor([[2, 2], [3, 0], [1, 0]])}
    audit(split)
    # labelled rows never enter the graph: its edges are the train pairs
    g = split.graph()
    assert torch.equal(g['user', 'interacts', 'item'].edge_index,
                       split.train)
    assert len(g.edge_types) == 2
    assert split.meta()['labelled'] == {'test': 2}
    split.labelled = {'test': torch.tensor([[2, 0], [3, 1], [1, 0]])}
    with pytest.raises(ValueError, match=r"1 negatives of labelled\['test'\]"
                       r" are positives of the split \(e.g. user 0, item 1"):
        audit(split)
    split.labelled = {'test': torch.tensor([[2], [3]])}
    with pytest.raises(ValueError, match=r'must be a \[3, n\] tensor'):
        audit(split)


def test_audit_time_report_and_temporal_error():
    inter = make_log(seed=5)
    temporal = temporal_split(inter)
    assert audit(temporal)['train_after_first_held_out'] == 0
    rnd = random_split(inter, seed=0)
    newer = int((rnd.attrs['train']['time'] > min(
        rnd.attrs['val']['time'].min(),
        rnd.attrs['test']['time'].min())).sum())
    assert newer > 0
    assert audit(rnd)['train_after_first_held_out'] == newer
    temporal.attrs['train']['time'] = temporal.attrs['train']['time'].clone()
    temporal.attrs['train']['time'][0] = 10 ** 7
    with pytest.raises(ValueError, match=r'1 training interactions are newer '
                       r'than the earliest held-out one'):
        audit(temporal)
    assert 'train_after_first_held_out' not in audit(
        manual([(0, 0)], [], []))


def test_split_round_trip_weights_only(tmp_path):
    inter = from_tensors(['b', 'a', 'c', 'a', 'b', 'c', 'a'],
                         [10, 11, 10, 12, 13, 11, 13])
    split = random_split(inter, seed=0)
    split.side = {USER_USER: torch.tensor([[0], [1]])}
    split.x = {'user': torch.ones(3, 2)}
    torch.save(split.to_dict(), tmp_path / 'split.pt')
    back = Split.from_dict(torch.load(tmp_path / 'split.pt',
                                      weights_only=True))
    assert back.ids['user'].tolist() == ['a', 'b', 'c']
    assert back.ids['item'].dtype.kind == 'i'
    assert back.ids['item'].tolist() == [10, 11, 12, 13]
    for name in ('train', 'val', 'test'):
        assert torch.equal(back.part(name), split.part(name))
    assert torch.equal(back.side[USER_USER], split.side[USER_USER])
    assert back.meta() == split.meta()
    assert back.known().nnz == len(inter)
