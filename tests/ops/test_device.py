"""Device choice, and the synchronisation-free forms of the operators that
read a value back from the device on the CPU (tested here on the CPU,
through the one switch ``ops.device.sync_free``)."""
import pytest
import torch

from pyg_recsys.data.loader import PairLoader
from pyg_recsys.data.session import SessionGraphs, SessionLoader
from pyg_recsys.nn.models import (
    NGCF,
    SRGNN,
    TAGNN,
    GRU4Rec,
    LightGCN,
    SASRec,
    SimGCL,
)
from pyg_recsys.ops import device as ops_device
from pyg_recsys.ops.device import (
    all_reduce_sum,
    dist_info,
    keep_freed_memory,
    resolve_device,
)
from pyg_recsys.sampling import UniformSampler
from pyg_recsys.testing import (
    SyncRecorder,
    clustered_split,
    synthetic_sessions,
)


def test_resolve_device():
    assert resolve_device('cpu') == torch.device('cpu')
    assert resolve_device(None) == resolve_device('auto')
    expected = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert resolve_device('auto').type == expected
    with pytest.raises(ValueError, match="'tpu' is not a device name"):
        resolve_device('tpu')
    with pytest.raises(ValueError, match="only 'cpu' and 'cuda'"):
        resolve_device('meta')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='no CUDA device'):
            resolve_device('cuda:0')
    else:
        n = torch.cuda.device_count()
        with pytest.raises(ValueError, match=f'has {n} CUDA device'):
            resolve_device(f'cuda:{n}')


def test_single_process_helpers():
    assert dist_info() == (0, 1)
    x = torch.arange(3.0)
    y = all_reduce_sum(x)
    assert torch.equal(x, y) and y is not x
    assert keep_freed_memory() in (True, False)
    import platform
    if platform.system() == 'Linux' and platform.libc_ver()[0] == 'glibc':
        assert keep_freed_memory()


def test_sync_recorder_sees_read_backs():
    x = torch.tensor([3, 1, 3, 2])
    with SyncRecorder() as rec:
        torch.unique(x)
        int(x.sum())
        x[x > 1]
        torch.repeat_interleave(x)
        x.index_select(0, x.clamp(max=3)).cumsum(0)  # no read-back
        torch.repeat_interleave(torch.arange(4), x, output_size=9)
    ops = [op for op, _ in rec.calls]
    assert ops[:2] == ['_unique2', '_local_scalar_dense']
    assert 'index' in ops and ops.count('repeat_interleave') == 1
    assert len(ops) == 4


def _pair_models():
    split = clustered_split(num_users=40, num_items=30, per_user=8)
    loader = PairLoader(split.train,
                        UniformSampler(split.num_items, split.csr('train')),
                        batch_size=64, num_neg=2)
    batch = next(iter(loader))
    U, n_items, g = split.num_users, split.num_items, split.train
    return batch, [
        LightGCN(U, n_items, g, embedding_dim=8, num_layers=2),
        NGCF(U, n_items, g, embedding_dim=8, num_layers=2, hidden_channels=8,
             message_dropout=0.0),
        # eps=0: the noisy views are clean, so both forms draw nothing
        SimGCL(U, n_items, g, embedding_dim=8, num_layers=2, eps=0.0,
               cl_weight=0.5),
    ]


def _session_models():
    train, _ = synthetic_sessions(num_items=20, num_sessions=60)
    out = []
    for model, mode in ((SASRec(20, embedding_dim=8, num_blocks=1,
                                dropout=0.0, max_len=8, inner_size=16),
                         'sequence'),
                        (GRU4Rec(20, embedding_dim=8, hidden_size=8,
                                 dropout=0.0), 'sequence'),
                        (SRGNN(20, embedding_dim=8), 'prefix'),
                        (TAGNN(20, embedding_dim=8), 'prefix')):
        data = SessionGraphs(train, mode=mode, num_items=20)
        out.append((model, next(iter(SessionLoader(data, batch_size=16)))))
    return out


def _cases():
    torch.manual_seed(0)
    batch, models = _pair_models()
    cases = [(m, batch) for m in models] + _session_models()
    return [pytest.param(m, b, id=type(m).__name__) for m, b in cases]


@pytest.mark.parametrize('model,batch', _cases())
def test_training_step_does_not_wait_for_the_device(model, batch,
                                                    monkeypatch):
    model.train()

    def step():
        model.zero_grad(set_to_none=True)
        loss = model.loss(batch)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()
                               if p.grad is not None]

    loss_cpu, grads_cpu = step()
    monkeypatch.setattr(ops_device, 'sync_free', lambda device: True)
    with SyncRecorder() as rec:
        loss_dev, grads_dev = step()
    assert rec.places() == []
    # the device form computes the same loss and gradients
    assert torch.allclose(loss_dev, loss_cpu, rtol=1e-5, atol=1e-6)
    assert len(grads_dev) == len(grads_cpu)
    for a, b in zip(grads_dev, grads_cpu):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
