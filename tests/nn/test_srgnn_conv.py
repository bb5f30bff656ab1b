import pytest
import torch
from torch_geometric.data import Batch

from pyg_recsys.data.session import session_graph
from pyg_recsys.nn.conv.srgnn_conv import SRGNNConv
from pyg_recsys.testing import needs, srgnn_gnn_cell, srgnn_session_A

needs_torch_sparse = needs('torch_sparse')

D = 4
# a repeat (2), a consecutive repeat (self-loop on 5) and a node (7) with
# two predecessors and two successors
SEQ = [2, 5, 5, 7, 2, 7, 9]


def make(num_steps=1):
    torch.manual_seed(0)
    return SRGNNConv(D, num_steps=num_steps).double()


def inputs(seq=SEQ, seed=1):
    g = session_graph(seq)
    torch.manual_seed(seed)
    x = torch.randn(g.num_nodes, D, dtype=torch.float64)
    return g, x


def test_matches_reference_cell_with_gradients():
    conv = make()
    g, x = inputs()
    assert g.num_nodes == 4  # items 2, 5, 7, 9
    x.requires_grad_()
    out = conv(x, g.edge_index, g.edge_weight_in, g.edge_weight_out)
    assert out.shape == (4, D)
    ref_x = x.detach().clone().requires_grad_()
    ref = srgnn_gnn_cell(conv, srgnn_session_A(SEQ), ref_x)
    assert torch.allclose(out, ref)
    grad = torch.randn_like(out)
    params = list(conv.parameters())
    got = torch.autograd.grad(out, [x] + params, grad)
    want = torch.autograd.grad(ref, [ref_x] + params, grad)
    for a, b in zip(got, want, strict=True):
        assert b.abs().sum() > 0
        assert torch.allclose(a, b)


def test_node_without_predecessor_gets_only_bias():
    conv = make()
    seq = [3, 1, 0]  # node 3 (item 3) has no predecessor, 0 no successor
    g, x = inputs(seq)
    out = conv(x, g.edge_index, g.edge_weight_in, g.edge_weight_out)
    assert torch.allclose(out, srgnn_gnn_cell(conv, srgnn_session_A(seq), x))


def test_weights_computed_when_omitted():
    conv = make()
    g, x = inputs()
    out = conv(x, g.edge_index, g.edge_weight_in, g.edge_weight_out)
    assert torch.allclose(conv(x, g.edge_index), out)


def test_num_steps_shares_weights():
    conv1, conv2 = make(1), make(2)
    assert conv2.state_dict().keys() == conv1.state_dict().keys()
    g, x = inputs()
    args = (g.edge_index, g.edge_weight_in, g.edge_weight_out)
    twice = conv1(conv1(x, *args), *args)
    assert torch.allclose(conv2(x, *args), twice)
    assert not torch.allclose(conv1(x, *args), twice)


def test_batching_equals_separate_graphs():
    conv = make()
    seqs = [SEQ, [9, 3], [4, 4, 1, 4]]
    graphs = [session_graph(s) for s in seqs]
    batch = Batch.from_data_list(graphs)
    torch.manual_seed(2)
    x = torch.randn(batch.num_nodes, D, dtype=torch.float64)
    out = conv(x, batch.edge_index, batch.edge_weight_in,
               batch.edge_weight_out)
    for i, s in enumerate(seqs):
        lo, hi = int(batch.ptr[i]), int(batch.ptr[i + 1])
        ref = srgnn_gnn_cell(conv, srgnn_session_A(s), x[lo:hi])
        assert torch.allclose(out[lo:hi], ref)


@needs_torch_sparse
@pytest.mark.filterwarnings('ignore:Sparse CSR tensor support')
def test_sparse_tensor_path_agrees():
    from torch_sparse import SparseTensor
    conv = make(2)
    batch = Batch.from_data_list([session_graph(SEQ),
                                  session_graph([9, 3, 3])])
    torch.manual_seed(3)
    x = torch.randn(batch.num_nodes, D, dtype=torch.float64)
    out = conv(x, batch.edge_index, batch.edge_weight_in,
               batch.edge_weight_out)
    n = batch.num_nodes
    src, dst = batch.edge_index
    adj_t = SparseTensor(row=dst, col=src, sparse_sizes=(n, n))
    assert torch.allclose(conv(x, adj_t), out)
    # torch sparse input too
    dense_t = torch.zeros(n, n, dtype=torch.float64)
    dense_t[dst, src] = 1
    assert torch.allclose(conv(x, dense_t.to_sparse()), out)
    assert torch.allclose(conv(x, dense_t.to_sparse_csr()), out)


def test_reset_parameters_changes_weights():
    conv = make()
    before = [p.detach().clone() for p in conv.parameters()]
    conv.reset_parameters()
    bound = 1 / D ** 0.5
    for old, p in zip(before, conv.parameters(), strict=True):
        assert not torch.equal(old, p)
        assert p.abs().max() <= bound
    assert len(before) == 10  # 2 Linear x 2, b_iah, b_oah, GRU x 4


def test_repr():
    assert repr(SRGNNConv(8, num_steps=2)) == 'SRGNNConv(8, num_steps=2)'


def test_errors():
    with pytest.raises(ValueError, match='SRGNNConv: channels must be'):
        SRGNNConv(0)
    with pytest.raises(ValueError, match='SRGNNConv: num_steps must be'):
        SRGNNConv(4, num_steps=0)
    with pytest.raises(ValueError, match="needs aggr='add'"):
        SRGNNConv(4, aggr='mean')
    conv = make()
    g, x = inputs()
    n = g.num_nodes
    adj = torch.zeros(n, n, dtype=torch.float64).to_sparse()
    with pytest.raises(ValueError, match='pass edge_weight_in=None'):
        conv(x, adj, g.edge_weight_in)
