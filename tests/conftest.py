"""Fixtures: every test in a folder of its own, the bundled sample, a tiny trained model."""

import os

import pytest
from filelock import FileLock

from .helpers import rows_from, tiny_spec, write_csv

# The cores shared among the test workers rather than each worker's TensorFlow taking them all
# (TensorFlow reads these once, when it loads; cnntree loads it only when a backend starts).
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
for _name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_name, str(max(1, (os.cpu_count() or 1) // WORKERS)))
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1" if WORKERS > 1 else "2")


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
    """A small tree (happy vs the rest, then the six others) trained 2 epochs on the sample, saved
    once for the whole test run: the first test worker to ask trains it, the others wait and read it
    (tests only read it)."""
    from cnntree import CnnTreeClassifier, save_model

    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "tiny_model"  # the run's own
    with FileLock(f"{root}.lock"):
        if not (root / "model").is_dir():
            train, val = sample.splits == "Training", sample.splits == "PublicTest"
            clf = CnnTreeClassifier(tiny_spec(), work_dir=root / "work").fit(
                sample.images[train], sample.labels[train], (sample.images[val], sample.labels[val]))
            save_model(clf, root / "model")
    return root / "model"


LONGEST_FIRST = ("test_workflow.py", "test_parallel.py", "test_train.py", "test_faults.py", "test_branches.py",
                 "test_warmstart.py", "test_compare.py", "test_tracking.py", "test_outputs_and_state.py",
                 "test_estimator.py", "test_transfer.py", "test_cli.py", "test_pretrained.py", "test_recipe.py")


def pytest_collection_modifyitems(items):
    """The modules that take longest start first, so the workers finish together rather than one
    running a long module alone at the end (the scheduler hands out modules in this order, not by
    their number of tests: ``--no-loadscope-reorder`` in pyproject's addopts)."""
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)  # stable: the order within a module and among the rest is kept
