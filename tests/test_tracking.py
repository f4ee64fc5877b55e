"""End to end: `cnntree train` on the bundled sample, the MLflow store it leaves, and the tools
that read it (compare, evaluate, predict, the pyfunc model)."""

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cnntree import load_model

from .helpers import ROOT, TINY_MODEL, run_cli

pytestmark = pytest.mark.slow  # real trainings

SAMPLE = "fer2013-sample"  # the experiment of every training on the bundled sample
TINY = {"name": "tiny_single", "kind": "single",
        "defaults": {"model": TINY_MODEL, "train": {"epochs": 1, "max_samples": 300}}}


def cnntree(cwd, *args, env=None):
    """``cnntree args`` in ``cwd`` with ``env`` set, in this process (``run_cli``)."""
    before, saved = os.getcwd(), {k: os.environ.get(k) for k in env or {}}
    os.chdir(cwd)
    os.environ.update(env or {})
    try:
        return run_cli(*args)
    finally:
        os.chdir(before)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The moravcik hierarchy on tiny networks (--quick) and a tiny single network with two seeds,
    trained once into one sqlite store (the real moravcik networks train in test_workflow); yields the
    folder, the tree's output, a client of the store and the last training's output."""
    cwd = tmp_path_factory.mktemp("project")
    env = {"MLFLOW_TRACKING_URI": ""}
    tree = json.loads((ROOT / "trees" / "moravcik.json").read_text())
    tree["defaults"]["model"] = TINY_MODEL
    tree["nodes"] = [{key: value for key, value in node.items() if key != "model"} for node in tree["nodes"]]
    (cwd / "moravcik.json").write_text(json.dumps(tree))
    code, out, err = cnntree(cwd, "train", cwd / "moravcik.json", "--quick", "--out", cwd / "model", env=env)
    assert code == 0, err[-3000:]
    (cwd / "tiny.json").write_text(json.dumps(TINY))
    for seed in ("0", "1"):  # two seeds of one spec: compare groups them; the second is registered
        code2, last, err2 = cnntree(cwd, "train", cwd / "tiny.json", "--seed", seed,
                                    *(["--register", "face-tiny"] if seed == "1" else []), env=env)  # same experiment
        assert code2 == 0, err2[-3000:]
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{cwd}/runs/mlflow.db")
    return cwd, out + err, mlflow.MlflowClient(), last


def test_train_prints_progress_and_results(trained):
    _, out, _, _ = trained
    assert "[NN1 1/4] epoch 1/1" in out and "[NN4 4/4] epoch 1/1" in out
    assert "PrivateTest  soft*" in out and "PrivateTest  hard" in out


def test_parent_run_with_four_nested_node_runs(trained):
    cwd, _, client, _ = trained
    experiment = client.get_experiment_by_name(SAMPLE)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("cnntree.kind") == "tree"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["NN1", "NN2", "NN3", "NN4"]
    assert all(r.info.status == "FINISHED" for r in children)
    history = client.get_metric_history(children[0].info.run_id, "loss")
    assert [m.step for m in history] == [0]
    metrics = parent.data.metrics
    for key in ("public_accuracy", "private_accuracy", "private_macro_f1", "private_weighted_f1",
                "private_accuracy_hard", "private_accuracy_soft", "private_hierarchical_f1", "private_node_NN1_accuracy",
                "private_ece", "private_nll", "private_brier", "private_node_NN1_ece", "public_nll", "train_seconds"):
        assert key in metrics, key
    assert metrics["private_accuracy"] == metrics["private_accuracy_soft"]
    assert 0 <= metrics["private_ece"] <= 1 and metrics["private_nll"] > 0
    # the tree's answers at 90% coverage, calibrated on PublicTest (compose.answers)
    assert 0 <= metrics["private_answers_specificity_90"] <= 1 and 0 <= metrics["private_answers_haurc"] <= 1
    assert 0.5 <= metrics["private_answers_coverage_90"] <= 1
    assert parent.data.params["net.NN1.model.name"] == "lenet"
    assert parent.data.params["net.NN1.balance.strategy"] == "one_vs_rest"
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"spec.json", "hierarchy.png", "evaluation", "classifier"} <= artifacts
    evaluation = {a.path for a in client.list_artifacts(parent.info.run_id, "evaluation")}
    assert "evaluation/PrivateTest_soft_confusion.png" in evaluation
    assert "evaluation/PublicTest_hard_confusion.png" in evaluation
    assert {"evaluation/PrivateTest_reliability.png", "evaluation/PublicTest_reliability.png"} <= evaluation
    assert (cwd / "runs" / "artifacts" / SAMPLE).is_dir()  # artifacts under runs/, not ./mlruns
    assert not (cwd / "mlruns").exists()


def test_compare_lists_tree_beside_single(trained):
    cwd, _, _, _ = trained
    code, out, err = cnntree(cwd, "compare", "--experiment", SAMPLE, env={"MLFLOW_TRACKING_URI": ""})
    assert code == 0, err
    runs, grouped = out.split("\n\n")
    lines = runs.splitlines()
    assert lines[0].split()[:4] == ["run", "status", "kind", "spec"]
    kinds = sorted((line.split()[2], line.split()[3]) for line in lines[1:])
    assert kinds == [("single", "tiny_single"), ("single", "tiny_single"), ("tree", "moravcik")]
    code, out, _ = cnntree(cwd, "compare", "--json", env={"MLFLOW_TRACKING_URI": ""})
    result = json.loads(out)
    assert {r["kind"] for r in result["runs"]} == {"single", "tree"}
    tiny = [g for g in result["over_seeds"] if g["spec"] == "tiny_single"]
    accuracies = [r["metrics"]["private_accuracy"] for r in result["runs"] if r["spec"] == "tiny_single"]
    assert len(tiny) == 1 and tiny[0]["seeds"] == 2
    assert tiny[0]["mean"] == pytest.approx(np.mean(accuracies)) and tiny[0]["std"] == pytest.approx(np.std(accuracies))
    row = [line for line in grouped.splitlines() if line.startswith("tiny_single")][0]
    assert f"{np.mean(accuracies):.4f} +- {np.std(accuracies):.4f}" in row and " 2 " in row


def test_trainings_of_one_spec_keep_their_models_side_by_side_and_one_is_registered(trained, capsys, sample):
    """The second training of a spec goes to ``<name>-2`` (never replacing the first), prints the
    comparison page of every finished run on the data, and its registered version predicts."""
    cwd, _, _, last = trained
    assert sorted(p.name for p in (cwd / "runs" / "models").iterdir()) == ["tiny_single", "tiny_single-2"]
    assert "classifier saved to runs/models/tiny_single-2, registered as models:/face-tiny/1" in last
    url = re.search(r"compare with the other (\d+) finished run\(s\) on this data: (\S+)", last)
    assert url and int(url.group(1)) == 2 and url.group(2).startswith("http://127.0.0.1:5000/#/compare-runs?runs=")
    import cv2

    cv2.imwrite(str(cwd / "face.png"), sample.images[0])
    code, out, err = cnntree(cwd, "predict", "models:/face-tiny/1", cwd / "face.png", "--json",
                             env={"MLFLOW_TRACKING_URI": ""})
    assert code == 0, err
    (row,) = json.loads(out)
    assert sum(row["probabilities"].values()) == pytest.approx(1, abs=1e-4)


def test_mlflow_shows_the_data_the_kind_the_children_and_where_to_look(trained):
    cwd, out, client, _ = trained
    experiment = client.get_experiment_by_name(SAMPLE)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "MLflow UI: mlflow ui --backend-store-uri sqlite:///runs/mlflow.db" in out
    assert f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs" in out
    parent = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("cnntree.kind") == "tree"][0]
    inputs = parent.inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.name == "fer2013_sample" and len(inputs[0].dataset.digest) == 8
    tags = {t.key: t.value for t in inputs[0].tags}
    assert tags["mlflow.data.context"] == "training" and tags["split.Training"] == "1134"
    assert tags["split.PrivateTest"] == "245" and tags["faces"] == "1750"
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith("4 child run(s):") and all(f"[NN{i}](#/experiments/" in note for i in range(1, 5))


def test_saved_classifier_evaluates_and_predicts(trained, sample):
    import cv2

    cwd, _, _, _ = trained
    code, out, err = cnntree(cwd, "evaluate", cwd / "model", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["split"] == "PrivateTest" and report["result"]["n"] == 245
    assert set(report["result"]["modes"]) == {"soft", "hard"}
    face = cwd / "face.png"
    cv2.imwrite(str(face), cv2.resize(sample.images[0], (96, 96)))
    code, out, err = cnntree(cwd, "predict", cwd / "model", face, "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["label"] in row["probabilities"] and sum(row["probabilities"].values()) == pytest.approx(1, abs=1e-4)


def test_pyfunc_model_matches_the_classifier(trained, sample):
    import mlflow
    import pandas as pd

    cwd, _, client, _ = trained
    parent = [r for r in client.search_runs([client.get_experiment_by_name(SAMPLE).experiment_id])
              if r.data.tags.get("cnntree.kind") == "tree"][0]
    model = mlflow.pyfunc.load_model(f"runs:/{parent.info.run_id}/model")
    faces = sample.images[:5]
    frame = pd.DataFrame({"pixels": [" ".join(map(str, f.ravel())) for f in faces]})
    served = model.predict(frame)
    expected = load_model(cwd / "model").predict_proba(faces)
    np.testing.assert_allclose(served[list(expected_classes())].to_numpy(), expected, atol=1e-5)
    assert list(served["label"]) == [expected_classes()[i] for i in expected.argmax(1)]
    # the code logged with it is cnntree's, without the shipped models and the sample it never reads
    code = Path(mlflow.artifacts.download_artifacts(f"runs:/{parent.info.run_id}/model")) / "code" / "cnntree"
    assert (code / "estimator" / "classifier.py").is_file() and (code / "pretrained" / "__init__.py").is_file()
    assert not (code / "sample").exists() and not [p for p in (code / "pretrained").iterdir() if p.is_dir()]
    assert sum(f.stat().st_size for f in code.rglob("*") if f.is_file()) < 2_000_000


def expected_classes():
    return ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def test_a_crash_ends_the_run_failed(tmp_path, monkeypatch):
    import mlflow

    from cnntree import CnnTreeClassifier, cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))

    def boom(self, *args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(CnnTreeClassifier, "fit", boom)
    assert cli.main(["train", "tiny.json"]) == 1
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/runs/mlflow.db")
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.info.status == "FAILED"


def test_sigterm_during_a_store_write_is_raised_once_the_write_is_done(tmp_path, monkeypatch):
    """An interrupt raised inside SQLAlchemy left SQLite's lock held, and ending the runs KILLED then
    failed with "database is locked": a signal that arrives while an epoch's figures are written is
    raised once they are stored, and the network's run ends KILLED."""
    from types import SimpleNamespace

    import mlflow

    from cnntree.errors import Terminated
    from cnntree.interrupts import handled
    from cnntree.tracking.runs import NetworkRun
    from cnntree.tracking.store import use_experiment

    monkeypatch.chdir(tmp_path)
    use_experiment("faults")
    write = mlflow.tracking.MlflowClient.log_batch

    def signalled(self, run_id, metrics=(), **kwargs):
        if metrics:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while the figures are being written
        return write(self, run_id, metrics=metrics, **kwargs)

    monkeypatch.setattr(mlflow.tracking.MlflowClient, "log_batch", signalled)
    with handled(), pytest.raises(Terminated), mlflow.start_run():
        network = NetworkRun(SimpleNamespace(id="root", settings=lambda: {"epochs": 2}))
        with network as (callback,):
            callback.on_epoch_end(0, {"loss": 0.5})
    run = mlflow.tracking.MlflowClient().get_run(network.run_id)
    assert run.data.metrics == {"loss": 0.5} and run.info.status == "KILLED"


def test_new_stores_start_from_a_migrated_copy_with_their_own_default_experiment(tmp_path, monkeypatch):
    import mlflow

    from cnntree.tracking.store import use_experiment

    monkeypatch.setenv("CNNTREE_CACHE", str(tmp_path / "cache"))
    ids = {}
    for folder in ("first", "second"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        ids[folder] = use_experiment("tiny")
        client = mlflow.MlflowClient(f"sqlite:///{tmp_path / folder}/runs/mlflow.db")
        default = client.get_experiment("0")
        assert default.name == "Default" and default.artifact_location.endswith(f"{folder}/mlruns/0")
        assert client.get_experiment_by_name("tiny").experiment_id == ids[folder]
    assert ids == {"first": "1", "second": "1"}
    (template,) = (tmp_path / "cache").glob("mlflow-*-empty.db")
    with sqlite3.connect(template) as db:  # migrated, and without another folder's Default experiment
        assert db.execute("SELECT version_num FROM alembic_version").fetchone()
        assert db.execute("SELECT COUNT(*) FROM experiments").fetchone() == (0,)

    (tmp_path / "blocked").write_text("a file where the cache folder should be")
    monkeypatch.setenv("CNNTREE_CACHE", str(tmp_path / "blocked"))
    (tmp_path / "third").mkdir()
    monkeypatch.chdir(tmp_path / "third")
    assert use_experiment("tiny") == "1"  # MLflow creates the store itself


def _wait_until_up(url: str, process, seconds: int) -> None:
    """Poll ``url`` until it answers; fail if ``process`` exits or ``seconds`` pass."""
    import urllib.request

    deadline = time.time() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            assert process.poll() is None and time.time() < deadline, f"{url} did not come up"
            time.sleep(0.2)


def _stop(server) -> None:
    """End a server's process group: SIGTERM, then SIGKILL when a loaded machine keeps it past 30 s."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_mlflow_server(tmp_path):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
                               "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                              # its background job runner (a dozen processes importing MLflow) serves
                              # nothing cnntree logs
                              env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/health", server, 120)
        (tmp_path / "tiny.json").write_text(json.dumps(TINY))
        uri = f"http://127.0.0.1:{port}"
        code, out, err = cnntree(tmp_path, "train", tmp_path / "tiny.json", env={"MLFLOW_TRACKING_URI": uri})
        assert code == 0, err[-3000:]
        assert f"in {uri}" in out
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=uri)
        runs = client.search_runs([client.get_experiment_by_name(SAMPLE).experiment_id])
        assert sorted((r.info.run_name, r.info.status) for r in runs) == [("net", "FINISHED"),
                                                                           ("tiny_single", "FINISHED")]
        assert any((tmp_path / "artifacts").rglob("PrivateTest_soft_confusion.png"))
        assert not (tmp_path / "runs" / "mlflow.db").exists()
    finally:
        _stop(server)


def test_mlflow_models_serve_answers_for_the_tree(trained, sample):
    import urllib.request

    cwd, _, client, _ = trained
    parent = [r for r in client.search_runs([client.get_experiment_by_name(SAMPLE).experiment_id])
              if r.data.tags.get("cnntree.kind") == "tree"][0]
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{cwd}/runs/mlflow.db",
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m",
                               f"runs:/{parent.info.run_id}/model", "--env-manager", "local", "-h", "127.0.0.1",
                               "-p", str(port)], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/ping", server, 180)
        rows = [[" ".join(map(str, face.ravel()))] for face in sample.images[:2]]
        body = json.dumps({"dataframe_split": {"columns": ["pixels"], "data": rows}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", body,
                                         {"Content-Type": "application/json"})
        predictions = json.loads(urllib.request.urlopen(request, timeout=120).read())["predictions"]
        assert len(predictions) == 2
        assert all(p["label"] in expected_classes() for p in predictions)
        assert sum(predictions[0][c] for c in expected_classes()) == pytest.approx(1, abs=1e-4)
    finally:
        _stop(server)
