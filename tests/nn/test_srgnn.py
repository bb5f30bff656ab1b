import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from pyg_recsys.data.session import SessionGraphs, session_graph
from pyg_recsys.nn.models.srgnn import SRGNN
from pyg_recsys.testing import (
    fit_sessions,
    session_hit,
    session_popularity_hit,
    srgnn_step_states,
    synthetic_sessions,
)

NI, D = 12, 6
SEQS = [[2, 5, 5, 7, 2, 7, 9], [9, 3], [4, 4, 1, 4, 0], [11]]
TARGETS = [1, 0, 4, 6]


def reference(model, seqs):
    """(session vectors, scores) of the reference SessionGraph.forward +
    compute_scores, on zero-padded sequences with ids shifted by one."""
    # the padding row of the reference's embedding: any value (masked)
    hidden, mask, weight = srgnn_step_states(model, seqs)
    ht = hidden[torch.arange(mask.shape[0]).long(), torch.sum(mask, 1) - 1]
    q1 = model.readout.linear_one(ht).view(ht.shape[0], 1, ht.shape[1])
    q2 = model.readout.linear_two(hidden)
    alpha = model.readout.linear_three(torch.sigmoid(q1 + q2))
    a = torch.sum(alpha * hidden * mask.view(mask.shape[0], -1, 1).float(),
                  1)
    if not model.nonhybrid:
        a = model.readout.linear_transform(torch.cat([a, ht], 1))
    b = weight[1:]
    return a, torch.matmul(a, b.transpose(1, 0))


def batch_of(seqs=SEQS, targets=TARGETS):
    return Batch.from_data_list([session_graph(s, t)
                                 for s, t in zip(seqs, targets,
                                                 strict=True)])


def make(**kwargs):
    torch.manual_seed(0)
    return SRGNN(NI, D, **kwargs).double()


@pytest.mark.parametrize('num_steps,nonhybrid', [(1, False), (2, True)])
def test_encode_matches_reference(num_steps, nonhybrid):
    model = make(num_steps=num_steps, nonhybrid=nonhybrid)
    batch = batch_of()
    s = model.encode(batch)
    ref_s, ref_scores = reference(model, SEQS)
    assert s.shape == (len(SEQS), D)
    assert torch.allclose(s, ref_s)
    assert torch.allclose(model.score(batch), ref_scores)
    cand = torch.tensor([[0, 3], [5, 5], [11, 1], [2, 7]])
    assert torch.allclose(model.score(batch, cand),
                          ref_scores.gather(1, cand))
    # gradients reach every parameter except the padding row
    model.loss(batch).backward()
    for name, p in model.named_parameters():
        if nonhybrid and name.startswith('readout.linear_transform'):
            assert p.grad is None  # s = s_g: the layer is unused
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert model.item_emb.weight.grad[NI].abs().sum() == 0


def test_loss_is_cross_entropy_over_items():
    model = make()
    batch = batch_of()
    _, ref_scores = reference(model, SEQS)
    want = F.cross_entropy(ref_scores, torch.tensor(TARGETS))
    assert torch.allclose(model.loss(batch), want)


def test_bce_loss_runs_and_learns():
    model = make(loss='bce')
    batch = batch_of()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    torch.manual_seed(1)
    first = model.loss(batch)
    assert first.dim() == 0 and torch.isfinite(first)
    for _ in range(30):
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
    after = torch.stack([model.loss(batch) for _ in range(10)]).mean()
    assert after < first


def test_training_beats_popularity():
    torch.manual_seed(0)
    train, test = synthetic_sessions()
    train_loader = DataLoader(SessionGraphs(train, num_items=30),
                              batch_size=128, shuffle=True)
    test_loader = DataLoader(SessionGraphs(test, num_items=30),
                             batch_size=256)
    model = SRGNN(30, 32)
    losses = fit_sessions(model, train_loader, epochs=4, lr=0.01)
    assert losses[-1] < losses[0]
    pop = session_popularity_hit(train, test_loader, 30, k=5)
    hit = session_hit(model, test_loader, k=5)
    assert hit > pop + 0.2, (hit, pop)


def test_reset_parameters():
    model = make()
    before = [p.detach().clone() for p in model.parameters()]
    model.reset_parameters()
    bound = 1 / D ** 0.5
    for old, p in zip(before, model.parameters(), strict=True):
        assert not torch.equal(old, p)
        assert p.abs().max() <= bound
    assert model.item_emb.weight[NI].abs().sum() == 0


def test_recommend_top_k():
    model = make()
    batch = batch_of()
    scores, items = model.recommend(batch, 3)
    _, ref_scores = reference(model, SEQS)
    assert torch.allclose(scores, ref_scores.topk(3, dim=1).values)
    assert items.shape == (len(SEQS), 3)


def test_errors():
    model = make()
    seq = [2, 5, 7]
    per_step = Batch.from_data_list([session_graph(seq, [5, 7, 1])])
    with pytest.raises(ValueError, match='SRGNN: this model is not causal'):
        model.loss(per_step)
    with pytest.raises(ValueError, match='SRGNNConv: num_steps must be'):
        SRGNN(NI, D, num_steps=0)
    with pytest.raises(ValueError, match="SRGNN: unknown loss 'mse'"):
        SRGNN(NI, D, loss='mse')
    assert 'num_steps=1, nonhybrid=False' in repr(model)
