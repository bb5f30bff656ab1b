import pytest
import torch
from torch_geometric.data import Batch

from pyg_recsys.data.session import session_graph
from pyg_recsys.nn.models.session_base import (
    SessionRecommender,
    per_step_targets,
)


class Bag(SessionRecommender):
    """Session vector = mean of its items' embeddings (not causal)."""

    def __init__(self, num_items, **kwargs):
        super().__init__(num_items, 8, **kwargs)
        self.reset_uniform_()

    def encode(self, batch):
        from torch_geometric.utils import scatter

        from pyg_recsys.data.session import step_batch
        return scatter(self.item_emb(batch.seq), step_batch(batch), 0,
                       dim_size=batch.length.numel(), reduce='mean')


def _batch(per_step=False):
    seqs = [[0, 1, 2], [3, 3], [4]]
    if per_step:
        return Batch.from_data_list(
            [session_graph(s, [(i + 1) % 6 for i in s]) for s in seqs])
    return Batch.from_data_list(
        [session_graph(s, (s[-1] + 1) % 6) for s in seqs])


def test_score_recommend_and_padding_row():
    torch.manual_seed(0)
    model = Bag(6)
    assert model.item_emb.weight.shape == (7, 8)
    assert torch.equal(model.item_emb.weight[6], torch.zeros(8))
    batch = _batch()
    scores = model.score(batch)
    assert scores.shape == (3, 6)
    items = torch.tensor([[1, 2], [0, 5], [4, 4]])
    assert torch.allclose(model.score(batch, items),
                          scores.gather(1, items))
    top_scores, top = model.recommend(batch, 2)
    assert torch.equal(top, scores.topk(2, dim=1).indices)
    with pytest.raises(ValueError, match=r'k must be in \[1, 6\]'):
        model.recommend(batch, 7)


@pytest.mark.parametrize('loss', ['ce', 'bce', 'bpr-max'])
def test_losses_train_and_give_gradients(loss):
    torch.manual_seed(0)
    model = Bag(6, loss=loss)
    batch = _batch()
    value = model.loss(batch)
    value.backward()
    assert torch.isfinite(value)
    assert model.item_emb.weight.grad.abs().sum() > 0


def test_ce_loss_is_cross_entropy_of_scores():
    torch.manual_seed(0)
    model = Bag(6)
    batch = _batch()
    expected = torch.nn.functional.cross_entropy(model.score(batch),
                                                 batch.y)
    assert torch.allclose(model.loss(batch), expected)


def test_negatives_never_hit_the_target():
    torch.manual_seed(0)
    model = Bag(6)
    y = torch.arange(6).repeat(500)
    neg = model.sample_negatives(y)
    assert (neg != y).all() and neg.min() >= 0 and neg.max() < 6
    assert torch.equal(torch.bincount(neg, minlength=6) > 0,
                       torch.ones(6, dtype=torch.bool))


def test_errors():
    with pytest.raises(ValueError, match='num_items must be a positive'):
        Bag(0)
    with pytest.raises(ValueError, match="unknown loss 'mse'"):
        Bag(5, loss='mse')
    with pytest.raises(ValueError, match='bpr_max_reg must be >= 0'):
        Bag(5, bpr_max_reg=-1.0)
    with pytest.raises(ValueError, match='embedding_dim must be a positive'):
        SessionRecommender(5, 0)
    model = Bag(6)
    with pytest.raises(ValueError, match='not causal, so it cannot train '
                       'on a target after every step'):
        model.loss(_batch(per_step=True))
    with pytest.raises(NotImplementedError, match='must implement encode'):
        SessionRecommender(5).encode(_batch())
    bad = _batch()
    bad.y = torch.tensor([1, 2])
    with pytest.raises(ValueError, match='y has 2 entries for 3 examples'):
        per_step_targets(bad)


def test_score_candidates_shared_or_per_example():
    torch.manual_seed(0)
    model = Bag(6)
    batch = _batch()
    full = model.score(batch)
    shared = torch.tensor([5, 0, 2])
    assert torch.allclose(model.score(batch, shared), full[:, shared])
    per = torch.tensor([[1, 2], [3, 4], [5, 0]])
    assert torch.allclose(model.score(batch, per), full.gather(1, per))
    with pytest.raises(ValueError, match=r'Bag.score: items must be \[n\] '
                       r'candidates shared by the examples or \[B, n\]'):
        model.score(batch, torch.zeros(2, 2, dtype=torch.long))


def test_recommend_can_exclude_the_sessions_items():
    torch.manual_seed(0)
    model = Bag(6)
    batch = _batch()  # sessions [0, 1, 2], [3, 3], [4]
    scores, items = model.recommend(batch, 3, exclude='session')
    seqs = [{0, 1, 2}, {3}, {4}]
    for row, seen in zip(items.tolist(), seqs):
        assert not set(row) & seen
    # the best items outside the session, in the order of the full scores
    full = model.score(batch)
    for b, seen in enumerate(seqs):
        order = [i for i in full[b].argsort(descending=True).tolist()
                 if i not in seen][:3]
        assert items[b].tolist() == order
    # more than what is left: padded with -1 / -inf
    scores, items = model.recommend(batch, 5, exclude='session')
    assert items[0].tolist()[3:] == [-1, -1]
    assert torch.isinf(scores[0, 3:]).all()
    plain = model.recommend(batch, 3)[1]
    assert plain[2].tolist() == full[2].topk(3).indices.tolist()
    with pytest.raises(ValueError, match="exclude must be None, 'session'"):
        model.recommend(batch, 3, exclude='seen')
