"""Faults: a training stopped mid-epoch resumes to the same result, and two trainings share a store.

Two identical trainings run at once against one sqlite store and one ``runs/`` folder, one in a
process of its own and one in the test's (the concurrency case, and the uninterrupted reference); a
third is terminated in its first network's epoch, resumed in a process that is SIGKILLed in its
second network's epoch, and resumed again with ``--resume``.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from ..helpers import TINY_MODEL, run_cli

pytestmark = pytest.mark.slow  # real trainings in subprocesses

SPEC = {"name": "faults", "kind": "tree", "data": {"path": "sample"},
        "defaults": {"model": TINY_MODEL, "train": {"epochs": 2, "batch_size": 32, "seed": 3,
                                                    "early_stopping": 0}},
        "nodes": [{"id": "root", "children": ["happy", "rest"]},
                  {"id": "rest", "children": ["angry", "disgust", "fear", "sad", "surprise", "neutral"],
                   "balance": "none"}]}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    (root / "faults.json").write_text(json.dumps(SPEC))
    return root


def train(store, *extra):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db"}
    return subprocess.Popen([sys.executable, "-m", "cnntree.cli", "train", str(store / "faults.json"), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=store, env=env)


def resume(store, work, monkeypatch):
    """``cnntree train --resume`` in this process (what is tested is what the killed process left
    behind, not the process that continues it); returns its exit status and output."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}/mlflow.db")
    monkeypatch.chdir(store)
    code, out, err = run_cli("train", store / "faults.json", "--work-dir", work, "--resume")
    return code, out + err


def private_probabilities(model_dir):
    """The saved classifier's probabilities on the sample's PrivateTest faces."""
    from cnntree import load_model
    from cnntree.data import load_faces

    sample = load_faces("sample", cache=False)
    return load_model(model_dir).predict_proba(sample.images[sample.splits == "PrivateTest"])


def assert_same_training(model_dir, store):
    """The same seed gives the same network, to float rounding: the near-chance accuracy of a tiny
    network would hide a different one (its top two classes are often 1e-5 apart)."""
    reference = private_probabilities(store / "runs" / "work" / "faults" / "classifier")
    np.testing.assert_allclose(private_probabilities(model_dir), reference, atol=1e-5)


def runs(store):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    experiment = client.get_experiment_by_name("fer2013-sample")  # the data set's experiment
    return [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" not in r.data.tags]


def test_two_trainings_at_once_share_the_store(store, monkeypatch):
    """One training in a process of its own and one in this process, started while the first trains."""
    first = train(store)
    seen = []
    for line in first.stdout:  # the first has claimed the default work folder and is training
        seen.append(line)
        if line.startswith("[root 1/2]"):
            break
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}/mlflow.db")
    monkeypatch.chdir(store)
    code, out, err = run_cli("train", store / "faults.json")
    outputs = ["".join(seen) + first.communicate(timeout=600)[0], out + err]
    assert [first.returncode, code] == [0, 0], outputs
    parents = runs(store)
    assert len(parents) == 2 and len({r.info.run_id for r in parents}) == 2
    assert {r.info.status for r in parents} == {"FINISHED"}
    # the second found the default work folder busy and used its own
    assert "is in use by another training; using" in outputs[1] and "in use" not in outputs[0]
    assert_same_training(store / "runs" / "work" / "faults-2" / "classifier", store)
    with sqlite3.connect(store / "mlflow.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def stop_at(process, line_start, how):
    """Read ``process``'s output until a line starts with ``line_start``, send it signal ``how``, and
    return everything it printed and its exit status."""
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(line_start):
            process.send_signal(how)  # at once: on a fast machine the next epoch ends within 0.3 s
            break
    seen.append(process.communicate(timeout=120)[0])
    return "".join(seen), process.returncode


def test_a_terminated_then_killed_training_resumes_to_the_same_result(store, monkeypatch):
    """SIGTERM (timeout, docker stop, systemd) is handled as Ctrl-C: exit 143, the MLflow runs end
    KILLED, never RUNNING. The training resumed from there is SIGKILLed in its second network's
    epoch: its run is found RUNNING by the next ``--resume``, which ends it FAILED and finishes the
    training from the last finished epochs, as if it had never stopped."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    work = store / "stopped"
    output, status = stop_at(train(store, "--work-dir", work), "[root 1/2] epoch 1/2", signal.SIGTERM)
    assert status == 143 and "cnntree: terminated" in output, output
    terminated = client.get_run(json.loads((work / "run.json").read_text())["run_id"])
    children = client.search_runs([terminated.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{terminated.info.run_id}'")
    assert terminated.info.status == "KILLED" and children and {c.info.status for c in children} == {"KILLED"}

    # the second network's first epoch is checkpointed before its line is printed
    output, status = stop_at(train(store, "--work-dir", work, "--resume"), "[rest 2/2] epoch 1/2", signal.SIGKILL)
    assert status == -signal.SIGKILL and "[root 1/2] resuming after epoch 1" in output, output
    killed = {r.info.run_id for r in runs(store) if r.info.status == "RUNNING"}
    assert len(killed) == 1
    assert not (work / "classifier").exists()  # no half-written model

    code, output = resume(store, work, monkeypatch)
    assert code == 0, output
    assert "[root 1/2] resuming after epoch 2" in output and "[root 1/2] epoch" not in output  # not retrained
    assert "[rest 2/2] resuming after epoch 1" in output
    by_id = {r.info.run_id: r for r in runs(store)}
    old = by_id[killed.pop()]
    assert old.info.status == "FAILED" and "killed" in old.data.tags["cnntree.ended"]
    assert old.data.tags["cnntree.resumed_from"] == terminated.info.run_id
    resumed = [r for r in by_id.values() if r.data.tags.get("cnntree.resumed_from") == old.info.run_id]
    assert len(resumed) == 1 and resumed[0].info.status == "FINISHED"
    assert_same_training(work / "classifier", store)  # resumed batches, order and optimiser state
