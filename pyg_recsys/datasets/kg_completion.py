r"""Knowledge-graph completion benchmarks: WN18RR, FB15k-237, Kinship,
UMLS and Nations."""
from __future__ import annotations

import io
import itertools
import os
import os.path as osp
import tarfile
from collections.abc import Callable
from typing import Any, ClassVar, TextIO

from pyg_recsys.data.kg import KG_PARTS, KGSplit, kg_split, read_triples
from pyg_recsys.datasets.base import CachedDataset, atomic_write, fetch_url
from pyg_recsys.io import BadDataError

#: Part -> file name of the upstream releases.
FILES = {'train': 'train.txt', 'val': 'valid.txt', 'test': 'test.txt'}


class KGCompletionDataset(CachedDataset):
    r"""A knowledge-graph completion benchmark: train / validation / test
    triples ``head<TAB>relation<TAB>tail``.

    * ``'wn18rr'``: WordNet subset without inverse relations (Dettmers et
      al., `"Convolutional 2D Knowledge Graph Embeddings"
      <https://arxiv.org/abs/1707.01476>`_, AAAI 2018): 40,943 entities,
      11 relations, 86,835 / 3,034 / 3,134 triples.
    * ``'fb15k-237'``: Freebase subset (Toutanova & Chen, CVSC 2015),
      14,541 entities, 237 relations, 272,115 / 17,535 / 20,466 triples;
      read from ConvE's ``FB15k-237.tar.gz`` as distributed (CRLF lines).
    * ``'kinship'`` (104 entities, 25 relations), ``'umls'`` (135, 46),
      ``'nations'`` (14, 55): Kemp et al. (2006) in the split of ConvE and
      Neural Theorem Provers.

    Entities and relations are numbered by first appearance over train,
    validation and test, head before tail (PyG's ``FB15k_237``
    numbering).  ``ds[0]`` is the graph of the *training* triples
    (:meth:`~pyg_recsys.data.kg.KGSplit.graph`: ``'entity'`` nodes, one
    edge type per relation and its reverse); :meth:`split` returns every
    part with the filter index of all known triples
    (:class:`~pyg_recsys.data.kg.KGSplit`).  Test triples whose entities
    never occur in training stay in the test part and are counted in
    ``split.info`` (28 in FB15k-237, 210 in WN18RR).

    Args:
        root: Writable data root (processed files in
            ``<root>/<name>/processed``).
        name: One of :attr:`names`.
        raw_dir: Read-only folder with the raw files.
        **kwargs: ``transform``, ``pre_transform``, ``force_reload``.
    """

    names: ClassVar[tuple[str, ...]] = ('wn18rr', 'fb15k-237', 'kinship',
                                        'umls', 'nations')
    #: name -> the archive holding the three files, where they come packed
    archives: ClassVar[dict[str, str]] = {'fb15k-237': 'FB15k-237.tar.gz'}
    urls: ClassVar[dict[str, str]] = {
        'wn18rr': 'https://raw.githubusercontent.com/villmow/'
                  'datasets_knowledge_embedding/master/WN18RR/original/'
                  '{file}',
        'fb15k-237': 'https://github.com/TimDettmers/ConvE/raw/master/'
                     'FB15k-237.tar.gz',
        'kinship': 'https://github.com/TimDettmers/ConvE/raw/master/'
                   'kinship.tar.gz',
        'umls': 'https://github.com/TimDettmers/ConvE/raw/master/'
                'umls.tar.gz',
        'nations': 'https://github.com/TimDettmers/ConvE/raw/master/'
                   'nations.tar.gz',
    }

    def __init__(self, root: str | None = None, name: str = 'wn18rr',
                 raw_dir: str | None = None, **kwargs: Any) -> None:
        if name not in self.names:
            raise ValueError(f'KGCompletionDataset: unknown name {name!r}; '
                             f'use one of {self.names}')
        self.name = name
        self.raw_files = self.raw_files_for(name)
        super().__init__(root, raw_dir, **kwargs)

    @classmethod
    def folder_name(cls, name: str = 'wn18rr', **kwargs: Any) -> str:
        return name

    @classmethod
    def raw_files_for(cls, name: str = 'wn18rr',
                      **kwargs: Any) -> tuple[str, ...]:
        if name in cls.archives:
            return (cls.archives[name],)
        return tuple(FILES.values())

    def cache_options(self) -> dict[str, Any]:
        return dict(super().cache_options(), kind='kg')

    def download(self) -> None:
        os.makedirs(self.raw_dir, exist_ok=True)
        url = self.urls[self.name]
        if self.name in self.archives:
            fetch_url(url, osp.join(self.raw_dir, self.archives[self.name]),
                      self.timeout)
        elif url.endswith('.tar.gz'):
            archive = osp.join(self.cache_dir, osp.basename(url))
            os.makedirs(self.cache_dir, exist_ok=True)
            if not osp.isfile(archive):
                fetch_url(url, archive, self.timeout)
            with tarfile.open(archive) as tf:
                for file in FILES.values():
                    data = _member(tf, file, archive).read()
                    with atomic_write(osp.join(self.raw_dir, file)) as f:
                        f.write(data)
        else:
            for file in FILES.values():
                fetch_url(url.format(file=file),
                          osp.join(self.raw_dir, file), self.timeout)

    def _openers(self) -> dict[str, tuple[Callable[[], TextIO], str]]:
        """Part -> (opener, label) of its file."""
        out = {}
        if self.name in self.archives:
            path = osp.join(self.raw_dir, self.archives[self.name])
            for part, file in FILES.items():
                def open_text(file: str = file) -> TextIO:
                    try:
                        with tarfile.open(path) as tf:
                            raw = _member(tf, file, path).read()
                    except (tarfile.TarError, EOFError, OSError) as e:
                        raise BadDataError(
                            f'{path}: not a readable tar archive '
                            f'({type(e).__name__}: {e}); restage the '
                            f'file') from None
                    return io.TextIOWrapper(io.BytesIO(raw),
                                            encoding='utf-8-sig')
                out[part] = (open_text, f'{path}!{file}')
        else:
            for part, file in FILES.items():
                path = osp.join(self.raw_dir, file)
                out[part] = ((lambda p=path: open(p, encoding='utf-8-sig')),
                             path)
        return out

    def make_payload(self) -> dict[str, Any]:
        openers = self._openers()
        parts = {part: read_triples(opener, label)
                 for part, (opener, label) in openers.items()}

        def where(part: str, n: int) -> str:
            """``'<file>: line N'`` of the ``n``-th triple of ``part``."""
            opener, label = openers[part]
            with opener() as f:
                lines = (k for k, line in enumerate(f, 1) if line.strip())
                lineno = next(itertools.islice(lines, n, None))
            return f'{label}: line {lineno}'

        split = kg_split(parts, label=self.raw_dir, where=where)
        split.info['dataset'] = self.name
        split.info['source'] = osp.abspath(self.raw_dir)
        payload = split.to_dict()
        if self.pre_transform is not None:
            payload['data'] = self.pre_transform(split.graph()).to_dict()
        return payload

    def load_payload(self, payload: dict[str, Any]) -> None:
        self._split = KGSplit.from_dict(
            {k: payload[k] for k in ('train', 'val', 'test', 'entity_ids',
                                     'relation_names', 'info')})
        if 'data' in payload:
            from torch_geometric.data import HeteroData
            data = HeteroData.from_dict(payload['data'])
        else:
            data = self._split.graph()
        self._data, self.slices = data, None

    def split(self) -> KGSplit:
        """The benchmark's train / validation / test triples."""
        return self._split

    @property
    def num_entities(self) -> int:
        return self._split.num_entities

    @property
    def num_relations(self) -> int:
        return self._split.num_relations

    def __repr__(self) -> str:
        s = self._split
        sizes = '/'.join(str(s.part(p).size(1)) for p in KG_PARTS)
        return (f'{type(self).__name__}({self.name}, num_entities='
                f'{s.num_entities}, num_relations={s.num_relations}, '
                f'triples={sizes})')


def _member(tf: tarfile.TarFile, file: str, label: str) -> Any:
    names = {m.name.rsplit('/', 1)[-1]: m for m in tf.getmembers()
             if m.isfile()}
    if file not in names:
        raise BadDataError(f'{label}: the archive has no {file} (it holds '
                           f'{sorted(names)})')
    return tf.extractfile(names[file])


__all__ = ['KGCompletionDataset']
