"""Helpers for the test suite (imported by tests only; needs pytest)."""
from __future__ import annotations

import importlib.util
from pathlib import Path


def needs(*packages: str):
    """A ``pytest`` mark that skips a test unless every one of
    ``packages`` is importable (like ``torch_geometric.testing
    .withPackage``): the suite passes without the optional extras."""
    import pytest
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    return pytest.mark.skipif(
        bool(missing), reason=f'needs {", ".join(missing)} (optional extra)')


def write_social_zip(folder: Path, users: int = 60, items: int = 50,
                     name: str = 'ciao') -> Path:
    """A Ciao-format ``<name>.zip`` (``rating.mat``, ``trustnetwork.mat``,
    read by :class:`~pyg_recsys.datasets.SocialDataset`) in ``folder``, of
    two taste groups: a user rates the items of its group high (4-5), the
    others low (1-2); trust links stay within groups.  Returns
    ``folder``."""
    import io
    import zipfile

    import numpy as np
    import scipy.io
    rng = np.random.default_rng(0)
    rows = []
    for u in range(1, users + 1):
        for i in rng.choice(items, size=12, replace=False) + 1:
            r = 5 if (u % 2) == (i % 2) else 1
            rows.append([u, i, 1, min(5, max(1, r + rng.integers(-1, 2))),
                         0])
    trust = [[u, v] for u in range(1, users + 1)
             for v in rng.choice(users, size=4) + 1 if (u % 2) == (v % 2)
             and u != v]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f'{name}.zip'
    with zipfile.ZipFile(path, 'w') as zf:
        for file, field, value in (('rating.mat', 'rating', rows),
                                   ('trustnetwork.mat', 'trustnetwork',
                                    trust)):
            buf = io.BytesIO()
            scipy.io.savemat(buf, {field: np.array(value)})
            zf.writestr(f'{name}/{file}', buf.getvalue())
    return folder


def fit_batch(model, batch, steps: int = 20,
              lr: float = 0.05) -> tuple[float, float]:
    """Takes ``steps`` Adam steps on ``model.loss(batch)``; returns the
    loss before and after (for "training lowers the loss" tests)."""
    import torch
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    first = model.loss(batch).item()
    for _ in range(steps):
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
    return first, model.loss(batch).item()


def clustered_split(num_users: int = 80, num_items: int = 60,
                    num_clusters: int = 4, per_user: int = 12,
                    noise: float = 0.1, seed: int = 0):
    """A tiny user-item log with community structure, split 8/1/1 per user.

    Users and items fall into ``num_clusters`` groups; each user picks
    ``per_user`` distinct items, from its own group with probability
    ``1 - noise``.  Item popularity is about flat, so the most-popular
    baseline (:class:`pyg_recsys.nn.models.Popularity`) is weak while any
    model that learns the groups ranks held-out items well: the data of
    the "training beats popularity" tests.
    """
    import torch

    from pyg_recsys.data.interactions import from_tensors
    from pyg_recsys.data.split import random_split
    gen = torch.Generator().manual_seed(seed)
    u_group = torch.arange(num_users) % num_clusters
    i_group = torch.arange(num_items) % num_clusters
    users, items = [], []
    for u in range(num_users):
        own = (i_group == u_group[u]).float()
        weight = own * (1 - noise) / own.sum() + (1 - own) * noise / (
            (1 - own).sum())
        picked = torch.multinomial(weight, per_user, generator=gen)
        users += [u] * per_user
        items += picked.tolist()
    inter = from_tensors(torch.tensor(users), torch.tensor(items))
    return random_split(inter, seed=seed)


def popularity_metrics(split, ks=(10, 20)) -> dict[str, float]:
    """Test metrics of the most-popular baseline on ``split``."""
    from pyg_recsys.nn.models.pop import Popularity
    from pyg_recsys.train import RankingEvaluator
    pop = Popularity(split.num_users, split.num_items, split.train)
    return RankingEvaluator(split, ks=ks)(pop, 'test')


def synthetic_sessions(num_items: int = 30, num_sessions: int = 400,
                       min_len: int = 3, max_len: int = 8,
                       noise: float = 0.1, seed: int = 0):
    """Tiny item sessions with a learnable next-item rule.

    Every item has one fixed random successor; a session starts at a random
    item and follows the successor with probability ``1 - noise`` (else a
    uniform item).  Starts are uniform, so item popularity is about flat
    and the most-popular baseline is weak, while a model that learns the
    transitions predicts the next item well: the data of the "training beats
    popularity" tests of the session models.

    Returns:
        ``(train, test)``: lists of item-id lists, 80/20 by session.
    """
    import torch
    gen = torch.Generator().manual_seed(seed)
    succ = torch.randperm(num_items, generator=gen)
    sessions = []
    for _ in range(num_sessions):
        n = int(torch.randint(min_len, max_len + 1, (1,), generator=gen))
        cur = int(torch.randint(num_items, (1,), generator=gen))
        seq = [cur]
        for _ in range(n - 1):
            if float(torch.rand(1, generator=gen)) < noise:
                cur = int(torch.randint(num_items, (1,), generator=gen))
            else:
                cur = int(succ[cur])
            seq.append(cur)
        sessions.append(seq)
    cut = int(0.8 * num_sessions)
    return sessions[:cut], sessions[cut:]


def write_s3rec(folder: Path, users: int = 120, num_items: int = 25,
                seed: int = 0) -> Path:
    """``folder/Beauty.txt`` in S3-Rec's layout (``user item item ...``,
    1-based ids) of :func:`synthetic_sessions` (lengths 4 to 9, one
    sequence per user): a tiny ``beauty`` data set whose sequences follow
    a fixed successor map.  Returns ``folder``."""
    train, test = synthetic_sessions(num_items, users, min_len=4,
                                     max_len=9, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'Beauty.txt').write_text(''.join(
        ' '.join(str(x) for x in [u + 1, *[i + 1 for i in seq]]) + '\n'
        for u, seq in enumerate(train + test)))
    return folder


def fit_sessions(model, loader, epochs: int = 10, lr: float = 0.01) -> list:
    """Trains ``model`` on ``loader`` with Adam through ``model.loss``;
    returns the mean loss of every epoch."""
    import torch
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(epochs):
        model.train()
        total, count = 0.0, 0
        for batch in loader:
            opt.zero_grad()
            loss = model.loss(batch)
            loss.backward()
            opt.step()
            total += loss.item() * int(batch.length.numel())
            count += int(batch.length.numel())
        history.append(total / count)
    return history


def session_popularity_hit(train, loader, num_items: int, k: int = 5
                           ) -> float:
    """Hit rate @ ``k`` of the most-popular next item over ``loader``
    (popularity counted over every item of the ``train`` sequences)."""
    import torch
    count = torch.zeros(num_items)
    for seq in train:
        count += torch.bincount(torch.as_tensor(seq), minlength=num_items)
    top = count.topk(k).indices
    hits = total = 0
    for batch in loader:
        y = batch.y.view(-1)
        hits += int(torch.isin(y, top).sum())
        total += y.numel()
    return hits / total


def session_hit(model, loader, k: int = 5) -> float:
    """Hit rate @ ``k`` of ``model.score(batch)`` over ``loader``."""
    import torch
    model.eval()
    hits = total = 0
    with torch.no_grad():
        for batch in loader:
            top = model.score(batch).topk(k, dim=1).indices
            y = batch.y.view(-1, 1)
            hits += int((top == y).any(1).sum())
            total += y.numel()
    return hits / total


# The SR-GNN reference code, written out (CRIPAC-DIG/SR-GNN, pytorch_code),
# shared by the tests of the session graphs, SRGNNConv, SR-GNN and TAGNN.

def srgnn_get_slice(inputs):
    """``Data.get_slice`` of the SR-GNN reference, literally: zero-padded
    sessions of item ids shifted by one (0 is padding), ``[B, L]``.

    Returns:
        ``(alias_inputs [B, L], A [B, n, 2n], items [B, n])``: the node of
        every step, ``concat([A_in, A_out]).T`` per session (float64) and
        the sorted unique items (zero-padded to the largest ``n``).
    """
    import torch
    n_node = [torch.unique(u).numel() for u in inputs]
    max_n_node = max(n_node)
    items, A, alias_inputs = [], [], []
    for u_input in inputs:
        node = torch.unique(u_input)
        items.append(node.tolist() + (max_n_node - len(node)) * [0])
        u_A = torch.zeros(max_n_node, max_n_node, dtype=torch.float64)
        for i in range(len(u_input) - 1):
            if u_input[i + 1] == 0:
                break
            u = int((node == u_input[i]).nonzero()[0, 0])
            v = int((node == u_input[i + 1]).nonzero()[0, 0])
            u_A[u][v] = 1
        u_sum_in = u_A.sum(0)
        u_sum_in[u_sum_in == 0] = 1
        u_A_in = u_A / u_sum_in
        u_sum_out = u_A.sum(1)
        u_sum_out[u_sum_out == 0] = 1
        u_A_out = u_A.t() / u_sum_out
        A.append(torch.cat([u_A_in, u_A_out]).t())
        alias_inputs.append([int((node == i).nonzero()[0, 0])
                             for i in u_input])
    return (torch.tensor(alias_inputs), torch.stack(A),
            torch.tensor(items))


def srgnn_session_A(seq):
    """``[n, 2n]`` matrix of :func:`srgnn_get_slice` for one unpadded
    session of 0-based item ids (its nodes: the sorted unique items)."""
    import torch
    return srgnn_get_slice(torch.tensor([[i + 1 for i in seq]]))[1][0]


def srgnn_gnn_cell(conv, A, hidden):
    """``GNN.GNNCell`` of the reference, literally, with the weights of an
    :class:`~pyg_recsys.nn.conv.SRGNNConv` (``A`` ``[B, n, 2n]`` and
    ``hidden`` ``[B, n, d]``, or one session without the batch
    dimension)."""
    import torch
    import torch.nn.functional as F
    n = A.shape[-2]
    input_in = torch.matmul(A[..., :n],
                            conv.linear_edge_in(hidden)) + conv.b_iah
    input_out = torch.matmul(A[..., n:2 * n],
                             conv.linear_edge_out(hidden)) + conv.b_oah
    inputs = torch.cat([input_in, input_out], -1)
    gi = F.linear(inputs, conv.gru.weight_ih, conv.gru.bias_ih)
    gh = F.linear(hidden, conv.gru.weight_hh, conv.gru.bias_hh)
    i_r, i_i, i_n = gi.chunk(3, -1)
    h_r, h_i, h_n = gh.chunk(3, -1)
    resetgate = torch.sigmoid(i_r + h_r)
    inputgate = torch.sigmoid(i_i + h_i)
    newgate = torch.tanh(i_n + resetgate * h_n)
    return newgate + inputgate * (hidden - newgate)


def srgnn_step_states(model, seqs, seed: int | None = None):
    """The reference ``SessionGraph.forward`` up to the states of every
    step, on zero-padded sequences with ids shifted by one.

    Returns:
        ``(hidden [B, L, d], mask [B, L], weight [I + 1, d])``: the states
        of the steps (padding steps take the padding row's), the mask of
        real steps and the reference's embedding (row 0: the padding item,
        drawn at random with ``seed``; the model's items after it).
    """
    import torch
    len_max = max(len(s) for s in seqs)
    inputs = torch.tensor([[i + 1 for i in s] + [0] * (len_max - len(s))
                           for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (len_max - len(s))
                         for s in seqs])
    alias_inputs, A, items = srgnn_get_slice(inputs)
    if seed is not None:
        torch.manual_seed(seed)
    weight = torch.cat([torch.randn(1, model.embedding_dim).double(),
                        model.item_weight()])
    hidden = weight[items]
    for _ in range(model.conv.num_steps):
        hidden = srgnn_gnn_cell(model.conv, A, hidden)
    hidden = torch.stack([hidden[i][alias_inputs[i]]
                          for i in range(len(alias_inputs))])
    return hidden, mask, weight


#: ATen operators that make the host wait for a CUDA device: reading a value
#: (``item``, ``int()``, ``bool()``), outputs whose size depends on the
#: data, and kernels that read a size back internally.
SYNC_OPS = frozenset({
    '_local_scalar_dense', 'is_nonzero', 'equal', 'allclose',
    'nonzero', 'masked_select', 'unique_consecutive', '_unique',
    '_unique2', 'unique_dim', 'bincount', 'embedding_dense_backward',
    'histc',
})


class SyncRecorder:
    """Records, while active, every operator that would make the host wait
    for a CUDA device, so a CPU test can check a code path that must not
    synchronise (``torch.cuda.set_sync_debug_mode`` needs a GPU).

    Flagged: the operators of :data:`SYNC_OPS`, indexing with a boolean
    mask, and ``repeat_interleave`` without ``output_size``.  Copies
    between devices are not seen (everything is on the CPU here).

    ``recorder.calls`` lists ``(operator, 'file:line')`` pairs, the place
    being the innermost frame in ``pyg_recsys`` (or the caller's).
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __enter__(self) -> SyncRecorder:
        from torch.utils._python_dispatch import TorchDispatchMode
        recorder = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                if recorder._syncs(func, args, kwargs):
                    recorder.calls.append((func.overloadpacket.__name__,
                                           _where()))
                return func(*args, **kwargs)

        self._mode = _Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._mode.__exit__(*exc)

    @staticmethod
    def _syncs(func, args, kwargs) -> bool:
        import torch
        name = func.overloadpacket.__name__
        if name in SYNC_OPS:
            return True
        if name == 'repeat_interleave':
            return kwargs.get('output_size') is None and (
                len(args) < 4 or args[3] is None)
        if name in ('index', 'index_put', 'index_put_', '_index_put_impl_'):
            indices = args[1] if len(args) > 1 else kwargs.get('indices')
            return any(isinstance(i, torch.Tensor)
                       and i.dtype in (torch.bool, torch.uint8)
                       for i in indices or ())
        return False

    def places(self) -> list[str]:
        """``'operator at file:line'``, each once, in order of first
        call."""
        return list(dict.fromkeys(f'{op} at {at}' for op, at in self.calls))


def _where() -> str:
    import traceback
    frames = traceback.extract_stack()[:-3]
    for frame in reversed(frames):
        if '/pyg_recsys/' in frame.filename and \
                not frame.filename.endswith('testing.py'):
            name = frame.filename.split('/pyg_recsys/')[-1]
            return f'{name}:{frame.lineno}'
    frame = frames[-1]
    return f'{frame.filename}:{frame.lineno}'


def ddp_fit(kind: str, out_path: str | None = None, epochs: int = 3,
            device: str = 'cpu') -> dict:
    """Trains a small LightGCN (``kind='lightgcn'``) or SASRec
    (``'sasrec'``, no dropout) through :class:`~pyg_recsys.train.Trainer`
    in this process, or, under ``torchrun``, in every process of the
    group; rank 0 writes ``{'losses', 'best_val', 'test'}`` as JSON to
    ``out_path``.  The same global batches in 1 and N processes must give
    the same result (``tests/test_distributed.py``)."""
    import json

    import torch

    from pyg_recsys.data.loader import PairLoader
    from pyg_recsys.data.session import SessionGraphs, SessionLoader
    from pyg_recsys.nn.models import LightGCN, SASRec
    from pyg_recsys.ops.device import dist_info
    from pyg_recsys.sampling import UniformSampler
    from pyg_recsys.train import (
        NextItemEvaluator,
        RankingEvaluator,
        Trainer,
        init_distributed,
        shutdown_distributed,
    )
    device = init_distributed(device)
    rank, world = dist_info()
    torch.manual_seed(0)
    if kind == 'lightgcn':
        split = clustered_split()
        model = LightGCN(split.num_users, split.num_items, split.train,
                         embedding_dim=16, num_layers=2)
        loader = PairLoader(split.train,
                            UniformSampler(split.num_items,
                                           split.csr('train')),
                            batch_size=96, num_neg=2, seed=1)
        evaluator = RankingEvaluator(split)
        monitor, lr = 'ndcg@20', 0.01
    elif kind == 'sasrec':
        train, test = synthetic_sessions(num_sessions=300)
        model = SASRec(30, embedding_dim=16, num_blocks=1, dropout=0.0,
                       max_len=8, inner_size=32)
        loader = SessionLoader(SessionGraphs(train, mode='sequence',
                                             num_items=30),
                               batch_size=50, shuffle=True, seed=1)
        held = SessionGraphs(test, mode='prefix', num_items=30)
        evaluator = NextItemEvaluator(
            {part: SessionLoader(held, batch_size=16)
             for part in ('val', 'test')}, num_items=30, num_negatives=5)
        monitor, lr = 'hit@20', 0.005
    else:
        raise ValueError(f'ddp_fit: kind must be lightgcn or sasrec, got '
                         f'{kind!r}')
    trainer = Trainer(model, loader, evaluator, lr=lr, epochs=epochs,
                      monitor=monitor, progress=False, device=device)
    result = trainer.fit()
    out = dict(losses=[r['loss'] for r in result['epochs']],
               best_val=result['best_val'], test=result['test'],
               world_size=world)
    if rank == 0 and out_path is not None:
        with open(out_path, 'w') as f:
            json.dump(out, f)
    del trainer
    shutdown_distributed()
    return out


if __name__ == '__main__':  # torchrun -m pyg_recsys.testing KIND OUT
    import sys
    ddp_fit(sys.argv[1], sys.argv[2])
