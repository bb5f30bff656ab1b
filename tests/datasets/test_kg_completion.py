"""The knowledge-graph completion benchmarks against their published
sizes."""
import pytest
import torch

from pyg_recsys.datasets import KGCompletionDataset

# name -> (entities, relations, train, valid, test, test triples with an
# entity unseen in training)
PUBLISHED = {
    'wn18rr': (40943, 11, 86835, 3034, 3134, 210),
    'fb15k-237': (14541, 237, 272115, 17535, 20466, 28),
    'kinship': (104, 25, 8544, 1068, 1074, 0),
    'umls': (135, 46, 5216, 652, 661, 0),
    'nations': (14, 55, 1592, 199, 201, 0),
}


@pytest.mark.parametrize('name', list(PUBLISHED))
def test_published_sizes(name, staged, tmp_path):
    files = KGCompletionDataset.raw_files_for(name)
    raw = staged(name, files)
    ds = KGCompletionDataset(tmp_path, name, raw_dir=raw)
    split = ds.split()
    ent, rel, train, val, test, unseen = PUBLISHED[name]
    assert (split.num_entities, split.num_relations) == (ent, rel)
    assert [split.part(p).size(1) for p in ('train', 'val', 'test')] == [
        train, val, test]
    assert split.info['test_unseen_entity_triples'] == unseen
    g = ds[0]
    assert g['entity'].num_nodes == ent
    assert sum(g[t].edge_index.size(1) for t in g.edge_types
               if not t[1].startswith('rev_')) == train
    tails, heads = split.filter_index()
    assert tails.nnz == train + val + test  # no triple repeats


def test_fb15k_first_appearance_numbering(staged, tmp_path):
    import io
    import tarfile
    raw = staged('fb15k-237', ('FB15k-237.tar.gz',))
    ds = KGCompletionDataset(tmp_path, 'fb15k-237', raw_dir=raw)
    with tarfile.open(f'{raw}/FB15k-237.tar.gz') as tf:
        text = io.TextIOWrapper(tf.extractfile('train.txt'),
                                encoding='utf-8').read()
    h, r, t = text.splitlines()[0].strip().split('\t')
    split = ds.split()
    assert split.entity_ids[:2].tolist() == [h, t]
    assert split.relation_names[0] == r
    assert split.train[:, 0].tolist() == [0, 0, 1]


def write(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return str(folder)


GOOD = {'train.txt': 'a\tr\tb\nb\ts\tc\n', 'valid.txt': 'a\ts\tc\n',
        'test.txt': 'c\tr\ta\n'}


def test_small_files_and_malformed_inputs(tmp_path):
    raw = write(tmp_path / 'raw', GOOD)
    ds = KGCompletionDataset(tmp_path / 'root', 'umls', raw_dir=raw)
    assert ds.split().test.tolist() == [[2], [0], [0]]
    assert 'triples=2/1/1' in repr(ds)
    write(tmp_path / 'raw', {'test.txt': 'c\tr\ta\nc\tr\n'})
    with pytest.raises(ValueError, match=r'test.txt: line 2: expected "head '
                       r'relation tail"'):
        KGCompletionDataset(tmp_path / 'r2', 'umls', raw_dir=raw)
    write(tmp_path / 'raw', {'test.txt': 'c\tq\ta\n'})
    with pytest.raises(ValueError, match=r"test.txt: line 1: the triple "
                       r"names the relation 'q', which no training triple "
                       r'has'):
        KGCompletionDataset(tmp_path / 'r3', 'umls', raw_dir=raw)
    write(tmp_path / 'raw', {'test.txt': ''})
    with pytest.raises(ValueError, match=r'test.txt: line 1: file is empty'):
        KGCompletionDataset(tmp_path / 'r4', 'umls', raw_dir=raw)
    with pytest.raises(ValueError, match="unknown name 'yago'"):
        KGCompletionDataset(tmp_path, 'yago')
    with pytest.raises(FileNotFoundError, match=r"raw files \['train.txt', "
                       r"'valid.txt', 'test.txt'\] not found"):
        KGCompletionDataset(tmp_path / 'r5', 'umls',
                            raw_dir=str(tmp_path / 'empty'))
    write(tmp_path / 'raw', GOOD)  # the good files again: their cache
    again = KGCompletionDataset(tmp_path / 'root', 'umls', raw_dir=raw)
    assert again.processed_paths == ds.processed_paths
    assert torch.equal(again.split().train, ds.split().train)
