"""Fixtures: every test in a folder of its own, the bundled sample, a tiny trained model."""

import os

import pytest
from filelock import FileLock

from cnntree.nets.parallel import share, thread_variables

from .helpers import rows_from, tiny_spec, training_rows, write_csv


def pytest_configure(config):
    """Deterministic kernels, and the cores shared among the processes that run tests rather than
    each one's TensorFlow taking them all (TensorFlow reads these when it loads; cnntree loads it
    only when a backend starts). The controller of ``-n N`` runs no test and sets nothing: its
    workers would inherit its values as if the user had set them."""
    worker = getattr(config, "workerinput", None)
    if worker is None and config.getoption("numprocesses", None):
        return
    processes = worker["workercount"] if worker else 1
    for name, value in thread_variables(share(os.cpu_count() or 1, processes)).items():
        os.environ.setdefault(name, value)
    # the same kernels in every test process: a training here and one in a subprocess (which
    # inherits this) give the same numbers for a seed
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")


def run_folder(tmp_path_factory):
    """The test run's own temporary folder, shared by its test workers (``-n N``)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(autouse=True)
def _private_folders(tmp_path_factory, monkeypatch):
    """Every test runs in a folder of its own, with its own MLflow store (``runs/`` there) and the
    test run's cache (parsed data, the empty MLflow store new stores copy), one for all test workers,
    which write it atomically: nothing is written into the repository or the user's folders."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    monkeypatch.setenv("CNNTREE_CACHE", str(run_folder(tmp_path_factory) / "cache"))
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
    """A small tree (happy vs the rest, then the six others) trained 2 epochs on 60 training faces
    of each class of the sample, saved once for the whole test run: the first test worker to ask
    trains it, the others wait and read it (tests only read it)."""
    from cnntree import CnnTreeClassifier, save_model

    root = run_folder(tmp_path_factory) / "tiny_model"
    with FileLock(f"{root}.lock"):
        if not (root / "model").is_dir():
            train, val = training_rows(sample), sample.splits == "PublicTest"
            clf = CnnTreeClassifier(tiny_spec(), work_dir=root / "work").fit(
                sample.images[train], sample.labels[train], (sample.images[val], sample.labels[val]))
            save_model(clf, root / "model")
    return root / "model"


LONGEST_FIRST = ("test_workflow.py", "test_train.py", "test_branches.py", "test_faults.py", "test_parallel.py",
                 "test_warmstart.py", "test_tracking.py", "test_compare.py", "test_outputs_and_state.py",
                 "test_transfer.py", "test_pretrained.py", "test_recipe.py", "test_mirror.py", "test_estimator.py",
                 "test_first_use.py", "test_cli.py")


def pytest_collection_modifyitems(items):
    """The modules that take longest start first, so the workers finish together rather than one
    running a long module alone at the end (the scheduler hands out modules in this order, not by
    their number of tests: ``--no-loadscope-reorder`` in pyproject's addopts)."""
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)  # stable: the order within a module and among the rest is kept
