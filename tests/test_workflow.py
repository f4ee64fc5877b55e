"""The headline workflow as a new user runs it on the bundled sample: a tree and its single network
trained into one experiment, each model where the next command looks, compared in one click."""

import json
import re

import cv2
import mlflow
import pytest

from cnntree.cli import main

from .helpers import ROOT

pytestmark = pytest.mark.slow  # three real (quick) trainings


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """``train moravcik --quick``, ``train single_vgg --quick --register``, then moravcik again, in
    one fresh folder with the default store."""
    import os

    cwd = tmp_path_factory.mktemp("workflow")
    before, os_env = os.getcwd(), os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.chdir(cwd)
    try:
        for argv in (["train", str(ROOT / "trees" / "moravcik.json"), "--quick"],
                     ["train", str(ROOT / "trees" / "single_vgg.json"), "--quick", "--register", "face-vgg"],
                     ["train", str(ROOT / "trees" / "moravcik.json"), "--quick"]):
            assert main(argv) == 0, argv
        yield cwd
    finally:
        os.chdir(before)
        if os_env is not None:
            os.environ["MLFLOW_TRACKING_URI"] = os_env


def parents(cwd):
    client = mlflow.MlflowClient(f"sqlite:///{cwd}/runs/mlflow.db")
    experiment = client.get_experiment_by_name("fer2013-sample")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


def test_tree_and_single_network_land_in_one_experiment_named_after_the_data(project):
    found = parents(project)
    assert [r.data.tags["cnntree.spec"] for r in found] == ["moravcik", "single_vgg", "moravcik"]
    assert all(r.info.status == "FINISHED" for r in found)


def test_models_go_where_the_next_command_looks_and_are_never_replaced(project, capsys, sample, monkeypatch):
    monkeypatch.chdir(project)  # the folder the user trained in
    models = project / "runs" / "models"
    assert sorted(p.name for p in models.iterdir()) == ["moravcik", "moravcik-2", "single_vgg"]
    assert main(["calibrate", "runs/models/moravcik", "--method", "temperature", "--out", "runs/models/t"]) == 0
    first_tree_run = parents(project)[0].info.run_id
    capsys.readouterr()
    assert main(["evaluate", first_tree_run, "--json"]) == 0  # the run id train printed
    assert 0 <= json.loads(capsys.readouterr().out)["metrics"]["private_accuracy"] <= 1
    cv2.imwrite(str(project / "face.png"), sample.images[0])
    for reference in ("models:/face-vgg/1", f"runs:/{parents(project)[1].info.run_id}"):
        assert main(["predict", reference, str(project / "face.png"), "--json"]) == 0, reference
        rows = json.loads(capsys.readouterr().out)
        assert len(rows) == 1 and abs(sum(rows[0]["probabilities"].values()) - 1) < 1e-4


def test_train_prints_the_comparison_page_of_the_runs_on_the_same_data(project, capsys, monkeypatch):
    monkeypatch.chdir(project)
    assert main(["train", str(ROOT / "trees" / "single_vgg.json"), "--quick", "--out", "runs/models/v2"]) == 0
    out = capsys.readouterr().out
    found = parents(project)
    url = re.search(r"compare with the other (\d+) finished run\(s\) on this data: (\S+)", out)
    assert url and url.group(2).startswith("http://127.0.0.1:5000/#/compare-runs?runs=")
    assert int(url.group(1)) == len(found) - 1
    assert all(r.info.run_id in url.group(2) for r in found)
    assert "classifier saved to runs/models/v2" in out


def test_a_downloaded_classifier_is_removed_when_the_command_ends(project, tmp_path, sample):
    import os
    import subprocess
    import sys

    cv2.imwrite(str(tmp_path / "face.png"), sample.images[0])
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "MLFLOW_TRACKING_URI": f"sqlite:///{project}/runs/mlflow.db"}
    done = subprocess.run([sys.executable, "-m", "cnntree.cli", "predict", f"runs:/{parents(project)[1].info.run_id}",
                           str(tmp_path / "face.png")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not list(scratch.glob("cnntree-model-*"))  # the copy MLflow downloaded is gone
