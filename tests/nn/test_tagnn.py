import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from pyg_recsys.data.session import SessionGraphs, session_graph
from pyg_recsys.nn.models.tagnn import TAGNN
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


def reference(model, seqs, masked=True):
    """Scores of the reference SessionGraph.forward + compute_scores,
    literally materialising [B, I, d], on zero-padded sequences with ids
    shifted by one; ``masked`` softmaxes over the real steps only (our
    deviation), else over the padded positions too (the reference)."""
    # the reference's embedding: row 0 the padding item
    hidden, mask, weight = srgnn_step_states(model, seqs, seed=5)
    pad = (mask == 0).unsqueeze(-1)  # [B, S, 1]
    ht = hidden[torch.arange(mask.shape[0]).long(), torch.sum(mask, 1) - 1]
    q1 = model.readout.linear_one(ht).view(ht.shape[0], 1, ht.shape[1])
    q2 = model.readout.linear_two(hidden)
    alpha = model.readout.linear_three(torch.sigmoid(q1 + q2))
    if masked:
        alpha = alpha.masked_fill(pad, float('-inf'))
    alpha = F.softmax(alpha, 1)
    a = torch.sum(alpha * hidden * mask.view(mask.shape[0], -1, 1).float(),
                  1)
    if not model.nonhybrid:
        a = model.readout.linear_transform(torch.cat([a, ht], 1))
    b = weight[1:]
    hidden = hidden * mask.view(mask.shape[0], -1, 1).float()
    qt = model.linear_t(hidden)
    logits = b @ qt.transpose(1, 2)  # [B, I, S]
    if masked:
        logits = logits.masked_fill(pad.transpose(1, 2), float('-inf'))
    beta = F.softmax(logits, -1)
    target = beta @ hidden  # [B, I, d]
    assert target.shape == (len(seqs), model.num_items, model.embedding_dim)
    a = a.view(ht.shape[0], 1, ht.shape[1])
    a = a + target
    return torch.sum(a * b, -1)


def batch_of(seqs=SEQS, targets=TARGETS):
    return Batch.from_data_list([session_graph(s, t)
                                 for s, t in zip(seqs, targets,
                                                 strict=True)])


def make(**kwargs):
    torch.manual_seed(0)
    return TAGNN(NI, D, **kwargs).double()


def grads(model, scores, grad):
    params = [p for p in model.parameters()]
    got = torch.autograd.grad(scores, params, grad, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g
            for p, g in zip(params, got, strict=True)]


@pytest.mark.parametrize('num_steps,nonhybrid', [(1, False), (2, True)])
def test_chunked_matches_dense_reference(num_steps, nonhybrid):
    full = make(num_steps=num_steps, nonhybrid=nonhybrid)
    chunked = make(num_steps=num_steps, nonhybrid=nonhybrid, item_chunk=5)
    assert torch.equal(full.item_emb.weight, chunked.item_emb.weight)
    batch = batch_of()
    ref = reference(full, SEQS)
    torch.manual_seed(1)
    grad = torch.randn_like(ref)
    want = grads(full, ref, grad)
    assert sum(g.abs().sum() for g in want) > 0
    for model in (full, chunked):
        scores = model.score(batch)
        assert scores.shape == (len(SEQS), NI)
        assert torch.allclose(scores, ref)
        for got, exp in zip(grads(model, scores, grad), want, strict=True):
            assert torch.allclose(got, exp)


def test_padding_deviation_vanishes_without_padding():
    model = make()
    seqs, targets = [[2, 5, 5, 7], [9, 3, 1, 3]], [1, 0]
    batch = batch_of(seqs, targets)
    unmasked = reference(model, seqs, masked=False)
    assert torch.allclose(model.score(batch), unmasked)
    # with padding the reference's unmasked softmax differs from ours
    assert not torch.allclose(model.score(batch_of()),
                              reference(model, SEQS, masked=False))


def test_candidates_equal_gathered_full_scores():
    model = make(item_chunk=3)
    batch = batch_of()
    torch.manual_seed(2)
    cand = torch.randint(0, NI, (len(SEQS), 7))
    full = model.score(batch)
    assert torch.allclose(model.score(batch, cand), full.gather(1, cand))


def test_loss_and_recommend():
    model = make()
    batch = batch_of()
    ref = reference(model, SEQS)
    assert torch.allclose(model.loss(batch),
                          F.cross_entropy(ref, torch.tensor(TARGETS)))
    scores, items = model.recommend(batch, 4)
    assert torch.allclose(scores, ref.topk(4, dim=1).values)
    assert model.encode(batch).shape == (len(SEQS), D)


def test_training_beats_popularity():
    torch.manual_seed(0)
    train, test = synthetic_sessions()
    train_loader = DataLoader(SessionGraphs(train, num_items=30),
                              batch_size=128, shuffle=True)
    test_loader = DataLoader(SessionGraphs(test, num_items=30),
                             batch_size=256)
    model = TAGNN(30, 32, item_chunk=16)
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


def test_errors():
    with pytest.raises(ValueError, match="TAGNN: loss 'bce' is not"):
        TAGNN(NI, D, loss='bce')
    with pytest.raises(ValueError, match="TAGNN: loss 'bpr-max' is not"):
        TAGNN(NI, D, loss='bpr-max')
    with pytest.raises(ValueError, match='TAGNN: item_chunk must be'):
        TAGNN(NI, D, item_chunk=0)
    model = make()
    batch = batch_of()
    shared = torch.tensor([0, 1])  # [n] candidates shared by the examples
    assert torch.allclose(model.score(batch, shared),
                          model.score(batch)[:, shared], atol=1e-6)
    with pytest.raises(ValueError, match=r'TAGNN.score: items must be \[n\]'):
        model.score(batch, torch.zeros(1, 2, 2, dtype=torch.long))
    per_step = Batch.from_data_list([session_graph([2, 5, 7], [5, 7, 1])])
    with pytest.raises(ValueError, match='TAGNN: this model is not causal'):
        model.loss(per_step)
    assert 'item_chunk=4096' in repr(model)
