import pytest
import torch
from torch_geometric.data import Batch

from pyg_recsys.data.session import session_graph
from pyg_recsys.nn.conv.srgnn_conv import SRGNNConv
from pyg_recsys.testing import needs

needs_torch_sparse = needs('torch_sparse')

D = 4
# a repeat (2), a consecutive repeat (self-loop on 5) and a node (7) with
# two predecessors and two successors
SEQ = [2, 5, 5, 7, 2, 7, 9]


def reference_A(u_input):
    """The reference get_slice for one (unpadded) session, literally:
    ``[n, 2n]`` = ``concat([u_A_in, u_A_out]).T``."""
    node = torch.unique(torch.tensor(u_input))
    n = node.numel()
    u_A = torch.zeros(n, n, dtype=torch.float64)
    for i in range(len(u_input) - 1):
        u = int((node == u_input[i]).nonzero()[0, 0])
        v = int((node == u_input[i + 1]).nonzero()[0, 0])
        u_A[u][v] = 1
    u_sum_in = u_A.sum(0)
    u_sum_in[u_sum_in == 0] = 1
    u_A_in = u_A / u_sum_in
    u_sum_out = u_A.sum(1)
    u_sum_out[u_sum_out == 0] = 1
    u_A_out = u_A.t() / u_sum_out
    return torch.cat([u_A_in, u_A_out]).t()


def reference_cell(conv, A, hidden):
    """GNNCell.GNNCell of the reference code, literally."""
    n = A.size(0)
    w_ih, w_hh = conv.gru.weight_ih, conv.gru.weight_hh
    b_ih, b_hh = conv.gru.bias_ih, conv.gru.bias_hh
    input_in = A[:, :n] @ conv.linear_edge_in(hidden) + conv.b_iah
    input_out = A[:, n:2 * n] @ conv.linear_edge_out(hidden) + conv.b_oah
    inputs = torch.cat([input_in, input_out], -1)
    gi = torch.nn.functional.linear(inputs, w_ih, b_ih)
    gh = torch.nn.functional.linear(hidden, w_hh, b_hh)
    i_r, i_i, i_n = gi.chunk(3, -1)
    h_r, h_i, h_n = gh.chunk(3, -1)
    resetgate = torch.sigmoid(i_r + h_r)
    inputgate = torch.sigmoid(i_i + h_i)
    newgate = torch.tanh(i_n + resetgate * h_n)
    return newgate + inputgate * (hidden - newgate)


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
    ref = reference_cell(conv, reference_A(SEQ), ref_x)
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
    assert torch.allclose(out, reference_cell(conv, reference_A(seq), x))


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
        ref = reference_cell(conv, reference_A(s), x[lo:hi])
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
