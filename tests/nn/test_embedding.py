import pytest
import torch

from pyg_recsys.nn.embedding import HeteroEmbedding


def test_tables_are_blocks_of_one_parameter():
    emb = HeteroEmbedding({'user': 2, 'item': 3, 'entity': 1}, 4)
    assert emb.offsets == {'user': 0, 'item': 2, 'entity': 5}
    assert emb.weight.shape == (6, 4)
    assert [n for n, _ in emb.named_parameters()] == ['weight']
    assert emb['item'].shape == (3, 4)
    assert emb['item'].data_ptr() == emb.weight[2:].data_ptr()
    with torch.no_grad():
        emb['entity'].fill_(7.0)  # writes through to the block
    assert emb.weight[5].tolist() == [7.0] * 4
    local = emb(torch.tensor([[0, 2]]), 'item')
    assert torch.equal(local, emb.weight[[2, 4]].unsqueeze(0))
    assert torch.equal(emb(torch.tensor([5])), emb.weight[5:])
    emb(torch.tensor([1]), 'item').sum().backward()
    assert emb.weight.grad[3].abs().sum() > 0
    assert emb.weight.grad[:3].abs().sum() == 0
    assert 'user=2, item=3, entity=1, embedding_dim=4' in repr(emb)


def test_errors():
    with pytest.raises(ValueError, match='positive count'):
        HeteroEmbedding({'user': 0}, 4)
    with pytest.raises(ValueError, match='embedding_dim must be positive'):
        HeteroEmbedding({'user': 1}, 0)
    with pytest.raises(KeyError, match="no node type 'tag'"):
        HeteroEmbedding({'user': 1}, 2)['tag']
