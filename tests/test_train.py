"""The one training loop, driven by three small models of different kinds:
a pairwise user-item ranker, a rating regressor and a next-item model over
batched session graphs."""
import json
import math

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_dense_batch

from pyg_recsys.data.loader import PairLoader
from pyg_recsys.data.split import Split
from pyg_recsys.loss import bpr_loss, softmax_ce_loss
from pyg_recsys.nn.models import ItemKNN, Popularity
from pyg_recsys.ops.topk import chunked_topk
from pyg_recsys.sampling import UniformSampler
from pyg_recsys.testing import clustered_split
from pyg_recsys.train import (
    ItemToItemEvaluator,
    NextItemEvaluator,
    RankingEvaluator,
    RatingEvaluator,
    Trainer,
    seed_everything,
)

# A user-item ranker ##########################################################


class DotRanker(nn.Module):
    def __init__(self, num_users: int, num_items: int, dim: int = 8):
        super().__init__()
        self.user = nn.Embedding(num_users, dim)
        self.item = nn.Embedding(num_items, dim)
        self.drop = nn.Dropout(0.2)  # consumes the global RNG in training

    def score(self, users, items=None):
        w = self.item.weight if items is None else self.item(items)
        return self.user(users) @ w.t()

    def recommend(self, users, k, exclude=None):
        return chunked_topk(self.score, users, k, exclude)

    def loss(self, batch):
        u = self.drop(self.user(batch.user))
        pos = (u * self.item(batch.pos)).sum(-1)
        neg = (u * self.item(batch.neg)).sum(-1)
        return bpr_loss(pos, neg)


def _clustered_split(num_users=40, num_items=30, seed=0):
    """Users in two groups that like disjoint halves of the items, so a
    model has something to learn and a popularity ranker does not."""
    g = torch.Generator().manual_seed(seed)
    rows, cols = [], []
    for u in range(num_users):
        half = torch.arange(num_items // 2) + (u % 2) * (num_items // 2)
        pick = half[torch.randperm(half.numel(), generator=g)[:8]]
        rows += [u] * 8
        cols += pick.tolist()
    pairs = torch.tensor([rows, cols]).view(2, num_users, 8)
    train = pairs[:, :, :6].reshape(2, -1)
    val = pairs[:, :, 6:7].reshape(2, -1)
    test = pairs[:, :, 7:].reshape(2, -1)
    return Split(num_users, num_items, train, val, test, kind='fixed',
                 seed=seed)


def _ranker_trainer(split, tmp_path=None, epochs=6, **kw):
    seed_everything(0)
    model = DotRanker(split.num_users, split.num_items)
    loader = PairLoader(split.train,
                        UniformSampler(split.num_items,
                                       exclude=split.csr('train')),
                        batch_size=32, seed=1)
    return Trainer(model, loader, RankingEvaluator(split, ks=(5, 10)),
                   lr=0.05, epochs=epochs, monitor='ndcg@10',
                   out_dir=tmp_path, progress=False, **kw)


def test_ranker_learns_and_beats_popularity(tmp_path):
    split = _clustered_split()
    trainer = _ranker_trainer(split, tmp_path, epochs=15)
    result = trainer.fit()
    losses = [r['loss'] for r in result['epochs']]
    assert losses[-1] < losses[0] * 0.7
    # popularity ranker: every user gets the globally most frequent items
    count = torch.bincount(split.train[1], minlength=split.num_items)

    class Pop(nn.Module):
        def score(self, users, items=None):
            return count.float().expand(users.numel(), -1).clone()

        def recommend(self, users, k, exclude=None):
            return chunked_topk(self.score, users, k, exclude)

    pop = RankingEvaluator(split, ks=(5, 10))(Pop(), 'test')
    assert result['test']['recall@10'] > pop['recall@10'] + 0.2
    saved = json.loads((tmp_path / 'metrics.json').read_text())
    assert saved['best_epoch'] == result['best_epoch']
    assert saved['test'] == result['test']
    assert (tmp_path / 'best.pt').exists() and (tmp_path / 'last.pt').exists()
    e = saved['epochs'][0]
    assert set(e) >= {'epoch', 'loss', 'train_seconds', 'eval_seconds', 'val'}


def test_test_is_scored_at_the_best_checkpoint(tmp_path):
    split = _clustered_split()
    trainer = _ranker_trainer(split, tmp_path, epochs=8)
    result = trainer.fit()
    best = torch.load(tmp_path / 'best.pt', weights_only=True)
    assert best['epoch'] == result['best_epoch']
    fresh = DotRanker(split.num_users, split.num_items)
    fresh.load_state_dict(best['model'])
    again = RankingEvaluator(split, ks=(5, 10))(fresh, 'test')
    assert again == result['test']
    vals = [r['val']['ndcg@10'] for r in result['epochs']]
    assert result['best_val']['ndcg@10'] == max(vals)


class Interrupt(Exception):
    pass


def test_resume_after_interruption_gives_identical_result(tmp_path):
    split = _clustered_split()
    full = _ranker_trainer(split, tmp_path / 'a', epochs=6).fit()

    def crash(trainer, record):
        if record['epoch'] == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        _ranker_trainer(split, tmp_path / 'b', epochs=6,
                        on_epoch_end=crash).fit()
    # a fresh process would build everything anew: scramble the RNG first
    torch.manual_seed(1234)
    resumed = _ranker_trainer(split, tmp_path / 'b', epochs=6)
    # a different initialisation, overwritten by the checkpoint
    nn.init.normal_(resumed.model.user.weight)
    out = resumed.fit(resume=True)
    assert [r['epoch'] for r in out['epochs']] == list(range(1, 7))
    strip = [{k: v for k, v in r.items() if not k.endswith('seconds')}
             for r in out['epochs']]
    ref = [{k: v for k, v in r.items() if not k.endswith('seconds')}
           for r in full['epochs']]
    assert strip == ref
    assert out['test'] == full['test']
    assert out['best_epoch'] == full['best_epoch']
    # resuming a finished run returns its result without training again,
    # with the best epoch's weights in the model
    again = _ranker_trainer(split, tmp_path / 'b', epochs=6)
    assert again.fit(resume=True)['test'] == full['test']
    assert RankingEvaluator(split, ks=(5, 10))(again.model, 'test') \
        == full['test']


def test_finished_run_extends_like_a_longer_run(tmp_path):
    split = _clustered_split()
    longer = _ranker_trainer(split, tmp_path / 'a', epochs=7).fit()
    _ranker_trainer(split, tmp_path / 'b', epochs=4).fit()
    torch.manual_seed(99)  # a new process: other RNG state
    out = _ranker_trainer(split, tmp_path / 'b', epochs=7).fit(resume=True)
    assert [r['epoch'] for r in out['epochs']] == list(range(1, 8))
    strip = [{k: v for k, v in r.items() if not k.endswith('seconds')}
             for r in out['epochs']]
    ref = [{k: v for k, v in r.items() if not k.endswith('seconds')}
           for r in longer['epochs']]
    assert strip == ref
    assert out['test'] == longer['test']
    assert out['best_epoch'] == longer['best_epoch']


def test_early_stopping_counts_validations(tmp_path):
    split = _clustered_split()
    trainer = _ranker_trainer(split, None, epochs=50, patience=2,
                              eval_every=2)
    for group in trainer.optimizer.param_groups:
        group['lr'] = 0.0  # nothing improves after the first validation
    result = trainer.fit()
    assert result['stopped_early']
    assert [r['epoch'] for r in result['epochs']] == [1, 2, 3, 4, 5, 6]
    assert result['best_epoch'] == 2


def test_trainer_errors(tmp_path):
    split = _clustered_split()
    with pytest.raises(ValueError, match="mode must be 'max' or 'min'"):
        _ranker_trainer(split, mode='up')
    with pytest.raises(ValueError, match='epochs and eval_every must be'):
        _ranker_trainer(split, epochs=0)
    with pytest.raises(ValueError, match='resume=True needs out_dir'):
        _ranker_trainer(split).fit(resume=True)
    t = _ranker_trainer(split, epochs=1)
    t.monitor = 'auc'
    with pytest.raises(KeyError, match="monitor 'auc' is not among"):
        t.fit()

    class Nan(DotRanker):
        def loss(self, batch):
            return super().loss(batch) * float('nan')

    t = _ranker_trainer(split, epochs=1)
    t.model = Nan(split.num_users, split.num_items)
    t.optimizer = torch.optim.SGD(t.model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match='loss became nan'):
        t.fit()


# Item-to-item ranking (PinSage's protocol) ###################################


class FixedItemRanker(nn.Module):
    """Scores items for a query item by a fixed item x item matrix."""

    def __init__(self, sim):
        super().__init__()
        self.register_buffer('sim', sim)

    def item_scores(self, items):
        return self.sim[items].clone()


def _timed_split():
    """9 users, 25 items; training times with a tie (user 1), a user
    whose latest item is not its last column (user 0), a user with test
    items but no training item (user 7) and one without test items
    (user 8)."""
    train = torch.tensor([[0, 0, 0, 1, 1, 1, 2, 2, 3, 4, 5, 6, 6, 8],
                          [3, 9, 20, 1, 2, 5, 0, 7, 4, 11, 12, 13, 24, 6]])
    time = torch.tensor([5, 9, 1, 4, 7, 7, 2, 3, 1, 1, 1, 8, 6, 1])
    val = torch.tensor([[0, 2, 3, 5], [4, 8, 10, 14]])
    test = torch.tensor([[0, 0, 1, 2, 3, 4, 5, 6, 7],
                         [15, 16, 17, 18, 19, 21, 22, 23, 0]])
    return Split(9, 25, train, val, test, kind='fixed',
                 attrs={'train': {'time': time}})


def _item_to_item_reference(split, sim, part, k, use_time=True):
    """hit@k and mrr@k by a plain loop over users."""
    time = split.attrs['train']['time'] if use_time else None
    known_parts = ['train'] if part == 'val' else ['train', 'val']
    hits, rr = [], []
    for u in range(split.num_users):
        targets = set(split.part(part)[1][split.part(part)[0] == u].tolist())
        cols = (split.train[0] == u).nonzero().view(-1).tolist()
        if not targets or not cols:
            continue
        # latest by time, ties: later column; no time: last column
        query = split.train[1, max(
            cols, key=lambda c: (time[c].item() if use_time else 0, c))]
        known = set()
        for name in known_parts:
            pairs = split.part(name)
            known |= set(pairs[1][pairs[0] == u].tolist())
        ranked = sorted((i for i in range(split.num_items)
                         if i not in known),
                        key=lambda i: -sim[query, i].item())[:k]
        first = [r for r, i in enumerate(ranked) if i in targets]
        hits.append(1.0 if first else 0.0)
        rr.append(1.0 / (first[0] + 1) if first else 0.0)
    return sum(hits) / len(hits), sum(rr) / len(rr), len(hits)


def test_item_to_item_matches_a_per_user_loop():
    split = _timed_split()
    sim = torch.randn(25, 25, generator=torch.Generator().manual_seed(0))
    # the (latest) query items of users 0, 1 and 5 point to a test item
    sim[9, 15] = sim[5, 17] = sim[12, 22] = 10.0
    model = FixedItemRanker(sim)
    ev = ItemToItemEvaluator(split, ks=(3, 10))
    assert ev.query_order == 'time'
    # user 0: item 9 is the latest (time 9), not the last column (20);
    # user 1: items 2 and 5 tie at time 7, the later column wins
    assert ev.query_items().tolist() == [9, 5, 7, 4, 11, 12, 13, -1, 6]
    for part in ('val', 'test'):
        got = ev(model, part)
        for k in (3, 10):
            hit, mrr, n = _item_to_item_reference(split, sim, part, k)
            assert got[f'hit@{k}'] == pytest.approx(hit)
            assert got[f'mrr@{k}'] == pytest.approx(mrr)
        # user 7 has test items but nothing to query with: left out
        assert ev.skipped[part] == (1 if part == 'test' else 0)
        assert n == (7 if part == 'test' else 4)
    # the reference discriminates: hits and misses, and the last column
    # (file order) as the query would score lower
    hit3 = _item_to_item_reference(split, sim, 'test', 3)[0]
    assert 0 < hit3 < 1
    assert _item_to_item_reference(split, sim, 'test', 3,
                                   use_time=False)[0] < hit3


def test_item_to_item_query_order_time_or_file():
    timed = _timed_split()
    plain = Split(timed.num_users, timed.num_items, timed.train, timed.val,
                  timed.test, kind='fixed')
    ev = ItemToItemEvaluator(plain)
    assert ev.query_order == 'file'
    # the last training column of each user
    assert ev.query_items().tolist() == [20, 5, 7, 4, 11, 12, 24, -1, 6]
    sim = torch.randn(25, 25, generator=torch.Generator().manual_seed(1))
    hit, _, _ = _item_to_item_reference(plain, sim, 'test', 10,
                                        use_time=False)
    assert ev(FixedItemRanker(sim), 'test')['hit@10'] == pytest.approx(hit)
    bad = Split(9, 25, timed.train, timed.val, timed.test, kind='fixed',
                attrs={'train': {'time': torch.arange(3)}})
    with pytest.raises(ValueError, match=r"ItemToItemEvaluator: split.attrs"
                       r"\['train'\]\['time'\] has 3 values for 14 "
                       r"training pairs"):
        ItemToItemEvaluator(bad)


def test_item_to_item_does_not_depend_on_batch_size():
    split = clustered_split()  # four groups, flat popularity
    g = torch.Generator().manual_seed(2)
    time = torch.randint(0, 50, (split.train.size(1), ), generator=g)
    split.attrs['train'] = {'time': time}
    knn = ItemKNN(split.num_users, split.num_items, split.train, k=20)
    results = [ItemToItemEvaluator(split, ks=(5, 10), batch_size=b)(knn,
                                                                   'test')
               for b in (1, 3, 7, None)]
    assert all(r == results[0] for r in results[1:])
    # item neighbours find the query's half; popularity does not
    pop = Popularity(split.num_users, split.num_items, split.train)
    pop_hit = ItemToItemEvaluator(split, ks=(10, ))(pop, 'test')['hit@10']
    assert results[0]['hit@10'] > pop_hit + 0.3


def test_item_to_item_checks_the_contract():
    split = _clustered_split()
    with pytest.raises(TypeError, match=r"ItemToItemEvaluator: DotRanker is "
                       r"not a ItemToItemRanker \(it lacks "
                       r"\['item_scores'\]\)"):
        ItemToItemEvaluator(split)(DotRanker(40, 30), 'test')


# A rating regressor ##########################################################


class BiasedMF(nn.Module):
    def __init__(self, num_users, num_items, dim=4):
        super().__init__()
        self.user = nn.Embedding(num_users, dim)
        self.item = nn.Embedding(num_items, dim)
        self.bias = nn.Parameter(torch.zeros(1))
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)

    def forward(self, users, items):
        return (self.user(users) * self.item(items)).sum(-1) + self.bias

    def predict(self, users, items):
        return self(users, items)

    def loss(self, batch):
        users, items, rating = batch
        return ((self(users, items) - rating) ** 2).mean()


def test_rating_regression_through_the_same_loop():
    g = torch.Generator().manual_seed(0)
    users = torch.randint(0, 20, (600,), generator=g)
    items = torch.randint(0, 15, (600,), generator=g)
    rating = 3.0 + (users % 3).float() - (items % 2).float()
    parts = dict(train=(users[:400], items[:400], rating[:400]),
                 val=(users[400:500], items[400:500], rating[400:500]),
                 test=(users[500:], items[500:], rating[500:]))
    batches = [tuple(t[i:i + 50] for t in parts['train'])
               for i in range(0, 400, 50)]
    seed_everything(0)
    model = BiasedMF(20, 15)
    ev = RatingEvaluator(parts)
    before = ev(model, 'test')['rmse']
    result = Trainer(model, batches, ev, lr=0.05, epochs=30,
                     monitor='rmse', mode='min', progress=False).fit()
    assert result['test']['rmse'] < 0.5 * before
    assert set(result['test']) >= {'mae', 'rmse'}
    with pytest.raises(KeyError, match="no part 'dev'"):
        ev(model, 'dev')


# A next-item model over batched session graphs ###############################


class MeanSession(nn.Module):
    """Embeds the session's items, pools them per graph (graph path) and
    reads the padded sequence (dense path), scores all items."""

    def __init__(self, num_items, dim=16):
        super().__init__()
        self.item = nn.Embedding(num_items, dim)
        self.gru = nn.GRU(dim, dim, batch_first=True)

    def forward(self, batch):
        x = self.item(batch.x)
        seq, mask = to_dense_batch(x, batch.batch)
        out, _ = self.gru(seq)
        last = mask.sum(1) - 1
        return out[torch.arange(out.size(0)), last]

    def score(self, batch, items=None):
        return self(batch) @ self.item.weight.t()

    def recommend(self, batch, k, exclude=None):
        return self.score(batch).topk(k, dim=1)

    def loss(self, batch):
        return softmax_ce_loss(self.score(batch), batch.y)


def _sessions(n, num_items, seed):
    # item i is always followed by item (i + 1) % num_items
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        start = int(torch.randint(0, num_items, (1,), generator=g))
        length = int(torch.randint(2, 5, (1,), generator=g))
        seq = (start + torch.arange(length + 1)) % num_items
        x = seq[:-1]
        ei = torch.stack([torch.arange(length - 1), torch.arange(1, length)])
        out.append(Data(x=x, edge_index=ei, y=seq[-1:]))
    return out


def test_next_item_over_session_batches():
    def batches(data, size):
        return [Batch.from_data_list(data[i:i + size])
                for i in range(0, len(data), size)]

    train = batches(_sessions(300, 12, 0), 30)
    ev = NextItemEvaluator(dict(val=batches(_sessions(60, 12, 1), 25),
                                test=batches(_sessions(60, 12, 2), 25)),
                           num_items=12, ks=(1, 5))
    seed_everything(0)
    model = MeanSession(12)
    before = ev(model, 'test')
    result = Trainer(model, train, ev, lr=0.02, epochs=15, monitor='hit@1',
                     progress=False).fit()
    assert result['test']['hit@1'] > 0.9 > before['hit@1']
    assert result['test']['mrr@5'] >= result['test']['hit@1']


class FixedScores(nn.Module):
    """Scores item i by a fixed table value (the same for every session)."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def score(self, batch, items=None):
        n = batch.y.numel()
        if items is None:
            return self.table.repeat(n, 1)
        return self.table[items]

    def recommend(self, batch, k, exclude=None):
        return self.score(batch).topk(k, dim=1)


def test_next_item_sampled_protocol():
    from pyg_recsys.data.session import SessionGraphs, SessionLoader
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(0, 30, (5,), generator=g).tolist()
            for _ in range(40)]
    targets = torch.randint(0, 30, (40,), generator=g)
    ds = SessionGraphs(seqs, targets=targets, num_items=30)
    table = torch.randn(30, generator=g)
    ev = NextItemEvaluator(dict(test=SessionLoader(ds, batch_size=16)),
                           num_items=30, ks=(5,), num_negatives=10, seed=4)
    # the negatives avoid each example's items and target
    batch = ds.collate(torch.arange(40))
    neg = ev.sample_negatives(batch)
    assert neg.shape == (40, 10)
    for i in range(40):
        banned = set(seqs[i]) | {int(targets[i])}
        assert not banned & set(neg[i].tolist())
    out = ev(FixedScores(table), 'test')
    assert out == ev(FixedScores(table), 'test')  # same negatives each time
    # an example's negatives depend on its position, not on its batch
    for start in (0, 7, 39):
        one = ds.collate(torch.arange(start, start + 1))
        assert torch.equal(ev.sample_negatives(one, start)[0], neg[start])
    assert not torch.equal(neg[0], neg[1])
    # per-example loop over the same negatives
    hits, ndcg = [], []
    for b in SessionLoader(ds, batch_size=40):
        for t, row in zip(b.y.tolist(), neg):
            rank = sum(float(table[j]) >= float(table[t]) for j in row)
            hits.append(float(rank < 5))
            ndcg.append(1 / math.log2(rank + 2) if rank < 5 else 0.0)
    assert out['sampled10_hit@5'] == pytest.approx(sum(hits) / 40)
    assert out['sampled10_ndcg@5'] == pytest.approx(sum(ndcg) / 40)
    assert 'hit@5' in out  # the full-ranking figures are still there
    with pytest.raises(ValueError, match=r'num_negatives must be in \[1, '
                       r'29\]'):
        NextItemEvaluator({}, num_items=30, num_negatives=30)


def test_step_decay_of_the_learning_rate():
    from pyg_recsys.data.session import SessionGraphs, SessionLoader
    ds = SessionGraphs([[0, 1, 2], [2, 1, 0]], num_items=3)
    model = MeanSession(3)
    seen = []
    trainer = Trainer(
        model, SessionLoader(ds, batch_size=2),
        NextItemEvaluator({'val': SessionLoader(ds),
                           'test': SessionLoader(ds)}, num_items=3, ks=(1,)),
        lr=0.8, epochs=5, monitor='hit@1', progress=False, lr_step=2,
        lr_gamma=0.5,
        on_epoch_end=lambda t, r: seen.append(
            t.optimizer.param_groups[0]['lr']))
    trainer.fit()
    assert seen == pytest.approx([0.8, 0.8, 0.4, 0.4, 0.2])
    with pytest.raises(ValueError, match='lr_step must be >= 1'):
        Trainer(model, [], None, lr_step=0)


# Two objectives alternating over two loaders (KGAT-style) ###################


class TwoObjectives(nn.Module):
    """User and item embeddings trained by BPR over interactions ('cf') and
    by a translation loss over item-item "triples" ('kg'), as KGAT
    alternates BPR with TransR; records which objective saw which batch."""

    objectives = ('cf', 'kg')

    def __init__(self, num_users, num_items, dim=8):
        super().__init__()
        self.user = nn.Embedding(num_users, dim)
        self.item = nn.Embedding(num_items, dim)
        self.rel = nn.Embedding(2, dim)
        self.calls = []

    def score(self, users, items=None):
        w = self.item.weight if items is None else self.item(items)
        return self.user(users) @ w.t()

    def recommend(self, users, k, exclude=None):
        return chunked_topk(self.score, users, k, exclude)

    def loss(self, batch, objective):
        self.calls.append(objective)
        if objective == 'cf':
            u = self.user(batch.user)
            return bpr_loss((u * self.item(batch.pos)).sum(-1),
                            (u * self.item(batch.neg)).sum(-1))
        h, r, t = batch
        d = self.item(h) + self.rel(r) - self.item(t)
        return d.pow(2).sum(-1).mean()


class Triples:
    """Seeded batches of item-item triples: two items of the same half of
    the catalogue (the halves the users of `_clustered_split` like),
    related by relation 0 in the first half and 1 in the second; with
    set_epoch like the pair loader."""

    def __init__(self, num_items, n=60, batch_size=20):
        g = torch.Generator().manual_seed(3)
        half = num_items // 2
        r = torch.randint(0, 2, (n,), generator=g)
        h = torch.randint(0, half, (n,), generator=g) + r * half
        t = torch.randint(0, half, (n,), generator=g) + r * half
        self.data, self.batch_size, self.epoch = (h, r, t), batch_size, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return -(-self.data[0].numel() // self.batch_size)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.epoch)
        order = torch.randperm(self.data[0].numel(), generator=g)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield tuple(x[idx] for x in self.data)


class FixedRanker(nn.Module):
    """The same item scores for every user (most popular)."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def score(self, users, items=None):
        return self.table.expand(users.numel(), -1).clone()

    def recommend(self, users, k, exclude=None):
        return chunked_topk(self.score, users, k, exclude)


def _two_objective_trainer(split, schedule, tmp_path=None, epochs=4,
                           separate=False):
    seed_everything(0)
    model = TwoObjectives(split.num_users, split.num_items)
    cf = PairLoader(split.train, UniformSampler(
        split.num_items, exclude=split.csr('train')), batch_size=32, seed=1)
    loaders = {'cf': cf, 'kg': Triples(split.num_items)}
    opt = ({k: torch.optim.Adam(model.parameters(), lr=0.05)
            for k in loaders} if separate else None)
    return Trainer(model, loaders, RankingEvaluator(split, ks=(5, 10)),
                   optimizer=opt, schedule=schedule, lr=0.05, epochs=epochs,
                   monitor='ndcg@10', out_dir=tmp_path, progress=False)


@pytest.mark.parametrize('schedule', ['sequential', 'interleave'])
def test_alternating_objectives_over_two_loaders(schedule, tmp_path):
    split = _clustered_split()
    trainer = _two_objective_trainer(split, schedule, tmp_path, epochs=15)
    result = trainer.fit()
    n_cf, n_kg = len(trainer.loaders['cf']), len(trainer.loaders['kg'])
    assert (n_cf, n_kg) == (8, 3)
    epoch1 = trainer.model.calls[:n_cf + n_kg]
    if schedule == 'sequential':
        assert epoch1 == ['cf'] * n_cf + ['kg'] * n_kg
    else:
        assert epoch1 == ['cf', 'kg'] * 3 + ['cf'] * 5
    first, last = result['epochs'][0], result['epochs'][-1]
    assert set(first['losses']) == {'cf', 'kg'}
    assert math.isclose(first['loss'], sum(first['losses'].values()))
    for name in ('cf', 'kg'):  # both objectives learn
        assert last['losses'][name] < 0.8 * first['losses'][name]
    count = torch.bincount(split.train[1], minlength=split.num_items)
    pop = RankingEvaluator(split, ks=(10,))(FixedRanker(count.float()),
                                            'test')
    assert result['test']['recall@10'] > pop['recall@10'] + 0.2


def test_alternating_objectives_resume_exactly(tmp_path):
    split = _clustered_split()
    full = _two_objective_trainer(split, 'sequential', tmp_path / 'a',
                                  separate=True).fit()
    part = _two_objective_trainer(split, 'sequential', tmp_path / 'b',
                                  epochs=2, separate=True)
    part.fit()
    resumed = _two_objective_trainer(split, 'sequential', tmp_path / 'b',
                                     separate=True).fit(resume=True)
    assert [r['losses'] for r in resumed['epochs']] == [
        r['losses'] for r in full['epochs']]
    assert resumed['test'] == full['test']


def test_alternating_objectives_errors():
    split = _clustered_split()
    model = TwoObjectives(split.num_users, split.num_items)
    ev = RankingEvaluator(split)
    with pytest.raises(ValueError, match=r"loaders \['ssl'\] name no "
                       r"objective of TwoObjectives"):
        Trainer(model, {'ssl': []}, ev)
    with pytest.raises(ValueError, match='one per objective'):
        Trainer(model, {'cf': [], 'kg': []}, ev,
                optimizer={'cf': torch.optim.SGD(model.parameters(), 0.1)})
    with pytest.raises(ValueError, match="schedule must be one of"):
        Trainer(model, {'cf': []}, ev, schedule='random')
    with pytest.raises(TypeError, match=r'Trainer: DotRanker is not a '
                       r"MultiObjective \(it lacks \['objectives'\]\)"):
        Trainer(DotRanker(3, 3), {'cf': []}, ev)


def test_evaluators_check_the_contract():
    split = _clustered_split()

    class ScoreOnly(nn.Module):
        def score(self, users, items=None):
            return torch.zeros(users.numel(), split.num_items)

    with pytest.raises(TypeError, match=r"RankingEvaluator: ScoreOnly is "
                       r"not a PairwiseRanker \(it lacks \['recommend'\]\)"):
        RankingEvaluator(split)(ScoreOnly(), 'val')
    with pytest.raises(TypeError, match=r"RatingEvaluator: ScoreOnly is not "
                       r"a RatingPredictor \(it lacks \['predict'\]\)"):
        RatingEvaluator({'val': (torch.zeros(1).long(),) * 3})(
            ScoreOnly(), 'val')
    with pytest.raises(TypeError, match=r"Trainer: ScoreOnly is not a "
                       r"Recommender \(it lacks \['loss'\]\)"):
        Trainer(ScoreOnly(), [], RankingEvaluator(split))


def test_resume_reads_checkpoints_with_the_older_numpy_rng_state(tmp_path):
    """Checkpoints written before the random states were stored as
    tensors held NumPy's state tuple; they still resume (NumPy arrays are
    allowed by the weights-only loader, code is not)."""
    import random

    import numpy as np
    split = _clustered_split()
    _ranker_trainer(split, tmp_path, epochs=2).fit()
    state = torch.load(tmp_path / 'last.pt', weights_only=True)
    np.random.seed(3)
    random.seed(3)
    state['rng']['numpy'] = np.random.get_state()
    state['rng']['python'] = random.getstate()
    state['test'] = None  # as if killed before the end
    torch.save(state, tmp_path / 'last.pt')
    resumed = _ranker_trainer(split, tmp_path, epochs=3).fit(resume=True)
    assert [r['epoch'] for r in resumed['epochs']] == [1, 2, 3]
    assert np.random.get_state()[0] == 'MT19937'
