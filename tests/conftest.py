import pytest

from pyg_recsys import typing as pt


@pytest.fixture
def no_extras(monkeypatch):
    """Switches the optional accelerated paths off (torch_sparse,
    torch_scatter), so tests can check the plain-torch fallbacks."""
    monkeypatch.setattr(pt, 'WITH_TORCH_SPARSE', False)
    monkeypatch.setattr(pt, 'WITH_TORCH_SCATTER', False)


# -- staged real data sets (read-only; see ../shared/datasets/README.md) ----

def _staged_root():
    import os
    from pathlib import Path
    env = os.environ.get('PYG_RECSYS_DATA')
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / 'shared' / 'datasets'


def _staged(name, files):
    folder = _staged_root() / name / 'raw'
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        pytest.skip(f'staged data set {name!r} not found ({folder} lacks '
                    f'{missing}); set PYG_RECSYS_DATA to the staged '
                    f'datasets folder')
    return str(folder)


@pytest.fixture(scope='session')
def staged():
    """``staged(name, files)``: the read-only raw folder of the staged data
    set ``name`` holding ``files``, or a skip saying what is missing."""
    return _staged


@pytest.fixture
def movielens_raw():
    """Read-only folder with GroupLens ml-100k (u.data, u.item, ...)."""
    return _staged('movielens-100k', ('u.data', 'u.item', 'u.user'))


@pytest.fixture(scope='module')
def gowalla_raw():
    """Read-only folder with the LightGCN Gowalla split."""
    return _staged('gowalla-lightgcn', ('train.txt', 'test.txt',
                                        'user_list.txt', 'item_list.txt'))


@pytest.fixture(scope='module')
def ogbl_ddi_raw():
    """Read-only folder with ogbl-ddi in OGB's layout (raw/, split/)."""
    folder = _staged('ogbl-ddi', (
        'ogbl_ddi/RELEASE_v1.txt', 'ogbl_ddi/raw/edge.csv.gz',
        'ogbl_ddi/split/target/train.pt', 'ogbl_ddi/split/target/valid.pt',
        'ogbl_ddi/split/target/test.pt'))
    return f'{folder}/ogbl_ddi'


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` need a CUDA device; CI has none."""
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA device (none here)')
    for item in items:
        if 'cuda' in item.keywords:
            item.add_marker(skip)
