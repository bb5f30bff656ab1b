import pytest
import torch

from pyg_recsys.data.loader import ItemPairLoader, NeighborhoodSampler
from pyg_recsys.nn.models import PinSage
from pyg_recsys.sampling import PPRHardSampler
from pyg_recsys.testing import clustered_split, popularity_metrics
from pyg_recsys.train import RankingEvaluator, Trainer, seed_everything

# users 0..3, items 0..5; item 5 has no user, user 3 has one item
PAIRS = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 3],
                      [0, 1, 2, 1, 3, 3, 4, 4]])
NU, NI = 4, 6


def _co_items():
    items = {}
    for u in range(NU):
        mine = PAIRS[1, PAIRS[0] == u].tolist()
        for i in mine:
            items.setdefault(i, set()).update(set(mine) - {i})
    return items


def test_blocks_are_prefix_ordered_hops_of_co_interacted_items():
    s = NeighborhoodSampler(PAIRS, NU, NI, num_layers=2, num_neighbors=2,
                            num_walks=200)
    seeds = torch.tensor([0, 3, 5])
    b = s.blocks(seeds, torch.Generator().manual_seed(0))
    assert len(b.nodes) == 3 and torch.equal(b.nodes[-1], seeds)
    reach = _co_items()
    for layer in range(2):
        src_nodes, dst_nodes = b.nodes[layer], b.nodes[layer + 1]
        assert torch.equal(src_nodes[:dst_nodes.numel()], dst_nodes)
        assert src_nodes.unique().numel() == src_nodes.numel()
        src, dst = b.edges[layer]
        for a, d, w in zip(src_nodes[src].tolist(), dst_nodes[dst].tolist(),
                           b.weights[layer].tolist()):
            # a neighbour is an item reachable item -> user -> item ...
            # (possibly over several steps), never the item itself
            assert a != d and w >= 1
        # at most T neighbours per node
        assert bool((torch.bincount(dst, minlength=dst_nodes.numel())
                     <= 2).all())
    # the isolated item has no neighbour; item 0's are 1 and 2 (one step)
    src, dst = b.edges[-1]
    last = b.nodes[1]
    assert (dst == 2).sum() == 0
    assert sorted(last[src[dst == 0]].tolist()) == [1, 2]
    assert reach[0] == {1, 2}


def test_loader_batches_positives_negatives_and_workers():
    s = NeighborhoodSampler(PAIRS, NU, NI, num_walks=20)
    hard = PPRHardSampler(_csr(), (0, 3), num_walks=50, of='items')
    loader = ItemPairLoader(PAIRS, s, batch_size=3, num_neg=4, hard=hard,
                            max_hard=2, seed=1)
    assert len(loader) == 3
    reach = _co_items()
    for epoch, h in ((1, 0), (2, 1), (5, 2)):  # the curriculum
        loader.set_epoch(epoch)
        batches = list(loader)
        for b in batches:
            q, p = b.seeds[b.query], b.seeds[b.pos]
            assert b.neg.numel() == 4 and b.hard.shape == (q.numel(), h)
            for qi, pi, ok in zip(q.tolist(), p.tolist(), b.valid.tolist()):
                # user 3's single item gives no positive
                assert ok == (pi != qi)
                if ok:
                    assert pi in reach[qi]
            assert torch.equal(b.blocks.nodes[-1], b.seeds)
            hard_items = b.seeds[b.hard]
            assert bool((hard_items != q.view(-1, 1)).all())
        # the same batches from worker processes
        loader.num_workers = 2
        again = list(loader)
        loader.num_workers = 0
        for a, c in zip(batches, again):
            assert torch.equal(a.seeds, c.seeds)
            assert torch.equal(a.query, c.query)
            assert torch.equal(a.hard, c.hard)
            for x, y in zip(a.blocks.edges, c.blocks.edges):
                assert torch.equal(x, y)
    with pytest.raises(ValueError, match='ItemPairLoader: need batch_size'):
        ItemPairLoader(PAIRS, s, batch_size=0)
    with pytest.raises(ValueError, match='cannot be sharded'):
        loader.shard(0, 2)
    with pytest.raises(ValueError, match='NeighborhoodSampler: num_layers'):
        NeighborhoodSampler(PAIRS, NU, NI, num_layers=0)
    with pytest.raises(ValueError, match=r'restart_prob must lie in \(0'):
        NeighborhoodSampler(PAIRS, NU, NI, restart_prob=1.0)


def _csr():
    from pyg_recsys.ops.csr import CSR
    return CSR.from_pairs(PAIRS[0], PAIRS[1], NU, NI)


def test_item_ppr_pools_exclude_the_item_and_follow_walks():
    hard = PPRHardSampler(_csr(), (1, 3), num_walks=400, of='items')
    reach = _co_items()
    for i in range(NI):
        pool = hard.pool.col[hard.pool.rowptr[i]:hard.pool.rowptr[i + 1]]
        assert i not in pool.tolist()
    # item 5 has no user: uniform fallback, never itself
    draws = hard.sample(torch.full((200,), 5), 1)
    assert bool((draws != 5).all())
    assert 'candidates per item' in repr(hard)
    # rank 0 of item 0 (left out by lo = 1) is 1 or 2, its co-items
    assert reach[0] == {1, 2}
    with pytest.raises(ValueError, match="of must be 'users' or 'items'"):
        PPRHardSampler(_csr(), of='entities')
    with pytest.raises(ValueError, match='only ever excludes itself'):
        PPRHardSampler(_csr(), of='items', exclude=_csr())


def test_forward_matches_layer_by_layer_inference_on_full_neighbourhoods():
    """The batch forward over blocks built from the inference's own
    neighbourhood table gives the all-items inference exactly."""
    torch.manual_seed(0)
    x = torch.randn(NI, 3)
    model = PinSage(NU, NI, PAIRS, item_x=x, embedding_dim=8, num_layers=2,
                    num_neighbors=NI, num_walks=50).eval()
    z = model.item_embeddings()
    assert z.shape == (NI, 8)
    # the same neighbourhood table, applied through blocks by hand
    gen = torch.Generator().manual_seed(model.seed)
    nbr, w = model.sampler.hop(torch.arange(NI), gen)
    ok = nbr >= 0
    ei = torch.stack([nbr[ok], torch.arange(NI).view(-1, 1).expand_as(nbr)[
        ok]])
    from pyg_recsys.data.loader import Blocks
    all_items = torch.arange(NI)
    blocks = Blocks([all_items] * 3, [ei, ei], [w[ok], w[ok]])
    with torch.no_grad():
        assert torch.allclose(model(blocks), z, atol=1e-6)
    # features reach an item without any interaction (item 5)
    h0 = model.inputs(torch.tensor([5]))
    assert torch.allclose(h0, model.embedding.weight[5:6]
                          + model.proj(x[5:6]))
    # user scores: the mean of the user's items against every item
    s = model.score(torch.tensor([0, 3]))
    want = torch.stack([z[[0, 1, 2]].mean(0), z[4]]) @ z.t()
    assert torch.allclose(s, want, atol=1e-6)
    assert torch.allclose(model.score(torch.tensor([0]), torch.tensor([4, 1])),
                          want[:1, [4, 1]], atol=1e-6)
    assert torch.allclose(model.item_scores(torch.tensor([2])), z[2:3] @ z.t())
    _, top = model.recommend(torch.tensor([0]), 2, exclude=_csr())
    assert not set(top[0].tolist()) & {0, 1, 2}


def test_loss_gradients_reach_every_part():
    torch.manual_seed(0)
    model = PinSage(NU, NI, PAIRS, item_x=torch.randn(NI, 3),
                    embedding_dim=8, num_neighbors=3, num_walks=20)
    loader = model.pair_loader(PAIRS, batch_size=8, num_neg=3)
    loader.set_epoch(1)
    batch = next(iter(loader))
    loss = model.loss(batch)
    loss.backward()
    assert loss.item() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_input():
    with pytest.raises(ValueError,
                       match='PinSage: edge_index must have shape'):
        PinSage(NU, NI, PAIRS[0])
    with pytest.raises(ValueError,
                       match=r'PinSage: user ids must lie in \[0, 2\)'):
        PinSage(2, NI, PAIRS)
    with pytest.raises(ValueError, match='margin must be positive'):
        PinSage(NU, NI, PAIRS, margin=0)
    with pytest.raises(ValueError, match=r'item_x must be \[num_items=6'):
        PinSage(NU, NI, PAIRS, item_x=torch.zeros(5, 2))
    with pytest.raises(ValueError, match='must be the 8 training pairs'):
        PinSage(NU, NI, PAIRS).pair_loader(PAIRS[:, :5])


def test_training_beats_popularity():
    split = clustered_split()
    seed_everything(0)
    model = PinSage(split.num_users, split.num_items, split.train,
                    embedding_dim=32, num_neighbors=5, num_walks=20)
    hard = PPRHardSampler(split.csr('train'), (5, 30), num_walks=100,
                          of='items')
    loader = model.pair_loader(split.train, batch_size=128, num_neg=20,
                               hard=hard, max_hard=2)
    trainer = Trainer(model, loader, RankingEvaluator(split), lr=0.01,
                      epochs=15, eval_every=15, monitor='recall@20',
                      progress=False)
    result = trainer.fit()
    losses = [e['loss'] for e in result['epochs']]
    assert losses[-1] < 0.7 * losses[0]
    pop = popularity_metrics(split)['recall@20']
    print(f"pinsage {result['test']['recall@20']:.3f} popularity {pop:.3f}")
    assert result['test']['recall@20'] > pop + 0.1
