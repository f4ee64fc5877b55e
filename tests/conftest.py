"""Fixtures: every test in a folder of its own, the bundled sample, a tiny trained model."""

import pytest

from cnntree import save_model

from .helpers import rows_from, tiny_spec, write_csv


@pytest.fixture(autouse=True)
def _private_folders(tmp_path_factory, monkeypatch):
    """Every test runs in a folder of its own, with its own MLflow store (``runs/`` there) and the
    session's data cache: nothing is written into the repository or the user's folders."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    monkeypatch.setenv("CNNTREE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="session")
def sample():
    from cnntree.data import load_faces

    return load_faces("sample", cache=False)


@pytest.fixture
def small_csv(tmp_path, sample):
    return write_csv(tmp_path / "small.csv", rows_from(sample))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, sample):
    """A small tree (happy vs the rest, then the six others) trained 2 epochs on the sample, saved."""
    from cnntree import CnnTreeClassifier

    spec = tiny_spec()
    root = tmp_path_factory.mktemp("tiny_model")
    train, val = sample.splits == "Training", sample.splits == "PublicTest"
    clf = CnnTreeClassifier(spec, work_dir=root / "work").fit(
        sample.images[train], sample.labels[train], (sample.images[val], sample.labels[val]))
    return save_model(clf, root / "model")
