import math

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from pyg_recsys.data.session import SessionGraphs, session_graph
from pyg_recsys.nn.models.sasrec import SASRec
from pyg_recsys.testing import (
    fit_sessions,
    session_hit,
    session_popularity_hit,
    synthetic_sessions,
)

NI = 12
SEQS = [[3, 5, 5, 1, 0], [7], [2, 9, 11], [4, 4, 8, 10, 6, 3, 1]]


def make_batch(seqs, per_step=True):
    data = []
    for s in seqs:
        target = [(i + 1) % NI for i in s] if per_step else [0]
        data.append(session_graph(s, target, num_items=NI))
    return Batch.from_data_list(data)


def small_model(**kwargs):
    args = dict(embedding_dim=8, num_blocks=2, num_heads=2, max_len=10,
                inner_size=16)
    args.update(kwargs)
    model = SASRec(NI, **args)
    with torch.no_grad():  # larger weights than N(0, 0.02): a sharper test
        for name, p in model.named_parameters():
            if 'norm' not in name:
                p.normal_(0.0, 0.5)
        model.item_emb.weight[NI].zero_()
    return model.eval()


def _ln(norm, x):
    return F.layer_norm(x, (x.size(-1),), norm.weight, norm.bias, norm.eps)


def dense_block(block, x):
    """One block by hand: dense masked softmax attention per head."""
    L, d = x.shape
    H = block.num_heads
    dh = d // H
    y = _ln(block.attn_norm, x) if block.norm_first else x
    w_q, w_k, w_v = block.qkv.weight.chunk(3)
    b_q, b_k, b_v = block.qkv.bias.chunk(3)
    q, k, v = y @ w_q.t() + b_q, y @ w_k.t() + b_k, y @ w_v.t() + b_v
    heads = []
    for h in range(H):
        cols = slice(h * dh, (h + 1) * dh)
        s = q[:, cols] @ k[:, cols].t() / math.sqrt(dh)
        for t in range(L):
            for j in range(t + 1, L):
                s[t, j] = float('-inf')
        heads.append(s.softmax(-1) @ v[:, cols])
    a = torch.cat(heads, dim=1) @ block.out.weight.t() + block.out.bias
    x = x + a
    if not block.norm_first:  # post-norm: LN after each residual sum
        x = _ln(block.attn_norm, x)
    z = _ln(block.ffn_norm, x) if block.norm_first else x
    z = z @ block.ffn1.weight.t() + block.ffn1.bias
    z = F.gelu(z) if block.activation == 'gelu' else torch.relu(z)
    out = x + z @ block.ffn2.weight.t() + block.ffn2.bias
    return out if block.norm_first else _ln(block.ffn_norm, out)


def dense_model(model, seq):
    """The whole encoder by hand over one sequence alone: ``[L, d]``."""
    d = model.embedding_dim
    seq = torch.tensor(seq)
    if not model.norm_first:  # LN(item + position), post-norm blocks
        x = _ln(model.final_norm, model.item_emb.weight[seq]
                + model.pos_emb.weight[:len(seq)])
        for block in model.blocks:
            x = dense_block(block, x)
        return x
    x = model.item_emb.weight[seq] * math.sqrt(d) \
        + model.pos_emb.weight[:len(seq)]
    for block in model.blocks:
        x = dense_block(block, x)
    return _ln(model.final_norm, x)


@pytest.mark.parametrize('activation,norm_first', [
    ('gelu', True), ('relu', True), ('gelu', False)])
def test_block_matches_dense_attention(activation, norm_first):
    torch.manual_seed(0)
    model = small_model(activation=activation, norm_first=norm_first)
    x = torch.randn(2, 6, 8)
    with torch.no_grad():
        out = model.blocks[0](x)
        for b in range(2):
            assert torch.allclose(out[b], dense_block(model.blocks[0], x[b]),
                                  atol=1e-5)


@pytest.mark.parametrize('norm_first', [True, False])
def test_model_matches_dense_reference_per_sequence(norm_first):
    torch.manual_seed(0)
    model = small_model(norm_first=norm_first)
    batch = make_batch(SEQS)
    with torch.no_grad():
        steps = model.encode_steps(batch)
        assert steps.shape == (sum(map(len, SEQS)), 8)
        # padding invariance: each sequence alone (no padding) gives the
        # same outputs at its real positions as inside the padded batch
        ref = torch.cat([dense_model(model, s) for s in SEQS])
        assert torch.allclose(steps, ref, atol=1e-4)
        alone = torch.cat([model.encode_steps(make_batch([s]))
                           for s in SEQS])
        assert torch.allclose(steps, alone, atol=1e-5)


@pytest.mark.parametrize('norm_first', [True, False])
def test_causal_mask(norm_first):
    """Changing a later item never changes an earlier position's output
    (eval mode, every position before the change, several sequences,
    padding in the batch)."""
    torch.manual_seed(0)
    model = small_model(norm_first=norm_first)
    ptr = [0]
    for s in SEQS:
        ptr.append(ptr[-1] + len(s))
    with torch.no_grad():
        base = model.encode_steps(make_batch(SEQS))
        assert torch.isfinite(base).all()
        for i, s in enumerate(SEQS):
            for j in range(len(s)):
                changed = [list(q) for q in SEQS]
                changed[i][j] = (s[j] + 3) % NI
                out = model.encode_steps(make_batch(changed))
                assert torch.allclose(out[:ptr[i] + j], base[:ptr[i] + j],
                                      atol=1e-6)
                assert not torch.allclose(out[ptr[i] + j],
                                          base[ptr[i] + j], atol=1e-4)
                assert torch.allclose(out[ptr[i + 1]:], base[ptr[i + 1]:],
                                      atol=1e-6)


def test_encode_matches_last_step_and_no_nan():
    torch.manual_seed(0)
    model = small_model(dropout=0.5)
    batch = make_batch(SEQS)
    with torch.no_grad():
        steps = model.encode_steps(batch)
        last = batch.length.cumsum(0) - 1
        assert torch.allclose(model.encode(batch), steps[last])
        assert torch.allclose(model(batch), steps[last])
        assert model.score(batch).shape == (len(SEQS), NI)
        # padded positions are finite too, in training mode as well
        out, mask = model.train().encode_padded(batch)
        assert not mask.all() and torch.isfinite(out).all()


def test_loss_gradients():
    torch.manual_seed(0)
    for loss in SASRec.LOSSES:
        model = SASRec(NI, embedding_dim=8, num_heads=2, max_len=10,
                       inner_size=16, loss=loss)
        assert model.causal
        value = model.loss(make_batch(SEQS))
        assert value.dim() == 0 and torch.isfinite(value)
        value.backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert torch.isfinite(model.loss(make_batch(SEQS, per_step=False)))
    assert 'max_len=10' in repr(model)


def test_reset_parameters():
    torch.manual_seed(0)
    model = SASRec(500, embedding_dim=32, num_blocks=2, inner_size=64)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3.0)
    torch.manual_seed(1)
    model.reset_parameters()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    emb = model.item_emb.weight
    assert torch.all(emb[500] == 0)
    assert abs(emb[:500].std().item() - 0.02) < 0.002
    for name, p in model.named_parameters():
        if 'norm' in name and name.endswith('weight'):
            assert torch.all(p == 1.0), name
        elif name.endswith('bias'):
            assert torch.all(p == 0.0), name
        else:
            assert p.abs().max() < 0.2 and p.std() > 0.01, name
    torch.manual_seed(1)
    model.reset_parameters()
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_too_long_input():
    model = SASRec(NI, embedding_dim=8, max_len=4)
    with pytest.raises(ValueError, match=r'SASRec: a sequence has 7 steps '
                       r'but the model has max_len=4 positions; build the '
                       r'data with SessionGraphs\(\.\.\., max_len=4\)'):
        model.encode(make_batch(SEQS))
    # truncated as advised, it works
    data = SessionGraphs(SEQS, mode='sequence', max_len=4, num_items=NI)
    batch = Batch.from_data_list([data[i] for i in range(len(data))])
    assert torch.isfinite(model.loss(batch))


def test_errors():
    for name in ('num_blocks', 'num_heads', 'max_len', 'inner_size'):
        with pytest.raises(ValueError, match=f'SASRec: {name} must be a '
                           f'positive integer'):
            SASRec(NI, **{name: 0})
    with pytest.raises(ValueError, match=r'SASRec: num_heads \(3\) must '
                       r'divide embedding_dim \(64\)'):
        SASRec(NI, num_heads=3)
    with pytest.raises(ValueError, match=r'SASRec: dropout must be in '
                       r'\[0, 1\)'):
        SASRec(NI, dropout=-0.1)
    with pytest.raises(ValueError, match=r'SASRec: attn_dropout must be in '
                       r'\[0, 1\)'):
        SASRec(NI, attn_dropout=1.0)
    with pytest.raises(ValueError, match="SASRec: unknown activation "
                       "'tanh'"):
        SASRec(NI, activation='tanh')


@pytest.mark.parametrize('loss', ['ce', 'bce'])
def test_training_beats_popularity(loss):
    torch.manual_seed(0)
    train, test = synthetic_sessions()
    train_loader = DataLoader(
        SessionGraphs(train, mode='sequence', num_items=30),
        batch_size=32, shuffle=True)
    test_loader = DataLoader(
        SessionGraphs(test, mode='prefix', num_items=30), batch_size=256)
    model = SASRec(30, embedding_dim=32, num_blocks=1, num_heads=2,
                   dropout=0.1, max_len=8, inner_size=64, loss=loss)
    history = fit_sessions(model, train_loader, epochs=6, lr=0.01)
    assert history[-1] < history[0]
    pop = session_popularity_hit(train, test_loader, 30, k=5)
    hit = session_hit(model, test_loader, k=5)
    assert hit > pop + 0.5, (hit, pop)  # reaches ~0.88 vs 0.17


def test_session_loader_batch_gives_same_outputs():
    from pyg_recsys.data.session import SessionLoader
    torch.manual_seed(0)
    data = SessionGraphs(SEQS, mode='sequence', num_items=NI)
    model = SASRec(NI, embedding_dim=8).eval()
    with torch.no_grad():
        fast = next(iter(SessionLoader(data, batch_size=4)))
        slow = next(iter(DataLoader(data, batch_size=4)))
        assert torch.allclose(model.encode_steps(fast),
                              model.encode_steps(slow))
        assert torch.allclose(model.encode(fast), model.encode(slow))
