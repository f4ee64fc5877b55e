"""Parallel training: ``--jobs N`` (local processes) and ``--ray local`` (Ray tasks) train a tree's
networks at once, give the sequential result for a seed, and nest each network's MLflow run under
its training's parent run.

Results are bit-identical when every network trains with the same number of math threads, so the
sequential reference runs with the thread count each parallel worker gets (``share``).
"""

import contextlib
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from cnntree import load_model
from cnntree.nets.parallel import NetworkJob, ProcessPool, RayTasks, Sequential, make_runner, share, thread_variables

from .helpers import TINY_MODEL, run_cli

pytestmark = pytest.mark.slow  # real trainings in subprocesses

SPEC = {"name": "par", "kind": "tree", "data": {"path": "sample"},
        "defaults": {"model": TINY_MODEL, "train": {"epochs": 2, "batch_size": 32, "seed": 3, "early_stopping": 0,
                                                     "max_samples": 256}},  # 8 steps an epoch
        "nodes": [{"id": "root", "children": ["happy", "rest"]},
                  {"id": "rest", "children": ["angry", "disgust", "fear", "sad", "surprise", "neutral"],
                   "balance": "none"}]}
THREADS = share(os.cpu_count() or 1, 2)  # what each of two workers gets here


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel")
    (root / "par.json").write_text(json.dumps(SPEC))
    return root


def train(store, name, *extra):
    """``cnntree train`` in this process into model directory ``store/name`` (the processes or Ray
    tasks that train the networks are what is tested, not the one that starts them); returns
    (output, MLflow parent run id)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(store)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}/mlflow.db")
        code, out, err = run_cli("train", "par.json", "--work-dir", f"work-{name}", "--out", name, *extra)
    assert code == 0, (out + err)[-3000:]
    assert "Traceback" not in err, err
    run_id = next(line.split()[2] for line in out.splitlines() if line.startswith("MLflow run "))
    return out + err, run_id


def train_in_a_process(store, name, threads):
    """The same in a process of its own whose math libraries use ``threads`` threads."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db",
           **thread_variables(threads)}
    proc = subprocess.run([sys.executable, "-m", "cnntree.cli", "train", "par.json", "--work-dir", f"work-{name}",
                           "--out", name], capture_output=True, text=True, cwd=store, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def reference(store, sample):
    """The sequential training's probabilities: fitted in this process when its math threads are
    those each parallel worker gets (the estimator, as ``train`` fits it, without the MLflow run this
    reference needs not), else trained in a process of its own with them."""
    if os.environ.get("TF_NUM_INTRAOP_THREADS") != str(THREADS):
        train_in_a_process(store, "sequential", THREADS)
        return probabilities(store / "sequential", sample)
    from cnntree import CnnTreeClassifier
    from cnntree.data import load_for_spec
    from cnntree.spec import load_spec

    spec = load_spec(store / "par.json")
    data, splits = load_for_spec(spec)
    clf = CnnTreeClassifier(spec, work_dir=store / "work-sequential").fit(
        data.images[splits.train], data.labels[splits.train],
        (data.images[splits.validation], data.labels[splits.validation]))
    return clf.predict_proba(sample.images[sample.splits == "PrivateTest"])


def probabilities(model_dir, sample):
    return load_model(model_dir).predict_proba(sample.images[sample.splits == "PrivateTest"])


def assert_nested(store, parent_id):
    """Two FINISHED child runs, ``root`` and ``rest``, under the parent, each with 2 logged epochs."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    parent = client.get_run(parent_id)
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    assert sorted(c.info.run_name for c in children) == ["rest", "root"]
    for child in children:
        assert child.info.status == "FINISHED" and child.data.tags["cnntree.network"] == child.info.run_name
        assert [m.step for m in client.get_metric_history(child.info.run_id, "val_loss")] == [0, 1]
        assert child.data.params["train.epochs"] == "2"
    assert parent.info.status == "FINISHED"


def test_runner_choice_and_core_share():
    assert isinstance(make_runner(), Sequential) and isinstance(make_runner(3), ProcessPool)
    assert isinstance(make_runner(1, "local"), RayTasks) and make_runner(1, "local").jobs is None
    assert make_runner(2, "auto").jobs == 2
    assert [share(16, 2), share(16, 3), share(2, 4), share(8, 0)] == [8, 5, 1, 8]


def test_a_network_job_pickles_with_its_tracking_context(tmp_path):
    job = NetworkJob("root 1/2", {"model": TINY_MODEL}, 2, (np.zeros((3, 48, 48), np.uint8), np.zeros(3, int)),
                     (np.zeros((1, 48, 48), np.uint8), np.zeros(1, int)), tmp_path,
                     tracking=contextlib.nullcontext(["epoch logger"]))
    again = pickle.loads(pickle.dumps(job))
    assert again.folder == tmp_path and again.train[0].shape == (3, 48, 48)
    with again.tracking as callbacks:
        assert callbacks == ["epoch logger"]
    assert NetworkJob("x", {}, 2, (), (), tmp_path).tracking is None  # no tracking: run_job trains without callbacks


def test_jobs_train_networks_at_once_to_the_sequential_result(store, reference, sample):
    output, run_id = train(store, "jobs", "--jobs", "2")
    assert f"training 2 networks, 2 at once ({THREADS} thread" in output
    for node in ("root 1/2", "rest 2/2"):  # workers' progress reaches the user
        assert f"[{node}] epoch 2/2" in output
    np.testing.assert_array_equal(probabilities(store / "jobs", sample), reference)
    assert_nested(store, run_id)


def test_ray_tasks_train_networks_to_the_sequential_result(store, reference, sample):
    pytest.importorskip("ray")
    output, run_id = train(store, "ray", "--ray", "local")
    assert "training 2 networks as Ray tasks on local" in output and "[rest 2/2] epoch 2/2" in output
    np.testing.assert_array_equal(probabilities(store / "ray", sample), reference)
    assert_nested(store, run_id)
