"""Hostile use: outputs that hold or lie inside what a command reads, folders of the
user's own made cnntree's by ``--resume``, wrong ``init.from`` after checkpoints were deleted,
names that become paths (experiments, splits), a training that dies in native code.

Every refusal is one ``cnntree: error:`` line with exit status 2, checked before anything is written,
deleted or started; the user's files and models are byte-identical afterwards.
"""

import json
import shutil
from pathlib import Path

import keras
import mlflow
import pytest

from cnntree import CnnTreeClassifier, save_model
from cnntree.cli import main
from cnntree.files import MARKER, mark
from cnntree.nets.models import create_model
from cnntree.spec import parse_spec

from ..helpers import MORAVCIK, TINY_MODEL
from .test_hostile import expect_error
from .test_names_and_bounds import sentinel


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` (markers included) and its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def single_model(folder: Path, model: dict = TINY_MODEL, seed: int = 0) -> Path:
    """A saved single network with random weights (nothing needs training to be read or refused)."""
    spec = parse_spec({"name": "flat", "kind": "single", "defaults": {"model": model}})
    keras.utils.set_random_seed(seed)
    net = create_model(model["name"], n_outputs=7, **{k: v for k, v in model.items() if k != "name"})
    return save_model(CnnTreeClassifier.from_networks(spec, {"net": net}, {"net": 0.5}), folder)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    return tmp_path


def no_runs(store: Path) -> bool:
    """No MLflow run was started (no store at all, or one without runs)."""
    if not (store / "mlflow.db").exists():
        return True
    return mlflow.search_runs(search_all_experiments=True).empty


# ---------------------------------------------------------------------------- --out and what a command reads


def test_calibrate_out_that_holds_its_source_is_refused(tmp_path, capsys):
    outer = single_model(tmp_path / "outer")
    inner = single_model(outer / "inner", seed=1)  # a model kept inside another model's folder
    before = snapshot(outer)
    expect_error(capsys, ["calibrate", inner, "--out", outer], "--out", "holds the model", "would delete")
    assert snapshot(outer) == before


def test_calibrate_out_inside_its_source_is_refused(tmp_path, capsys):
    model = single_model(tmp_path / "m")
    before = snapshot(model)
    expect_error(capsys, ["calibrate", model, "--out", model / "recalibrated"], "--out", "lies inside the model")
    assert snapshot(model) == before


def test_ensemble_out_that_holds_a_member_is_refused(tmp_path, capsys):
    outer = single_model(tmp_path / "outer")
    member = single_model(outer / "member", seed=1)
    other = single_model(tmp_path / "other", seed=2)
    before = snapshot(outer)
    expect_error(capsys, ["ensemble", other, member, "--out", outer], "--out", "holds the model")
    assert snapshot(outer) == before


def test_export_out_inside_the_model_is_refused(tmp_path, capsys):
    model = single_model(tmp_path / "m")
    before = snapshot(model)
    expect_error(capsys, ["export", model, "--format", "onnx", "--out", model / "onnx"], "lies inside the model")
    assert snapshot(model) == before


def test_train_out_that_holds_its_init_model_is_refused_before_any_run(tmp_path, capsys, store):
    outer = single_model(tmp_path / "outer")
    flat = single_model(outer / "flat", seed=1)
    before = snapshot(outer)
    expect_error(capsys, ["train", MORAVCIK, "--quick", "--init-from", flat, "--out", outer], "holds the model")
    assert snapshot(outer) == before and no_runs(store)


def test_train_out_inside_its_work_folder_is_refused(tmp_path, capsys, store):
    work = tmp_path / "work"
    expect_error(capsys, ["train", MORAVCIK, "--quick", "--work-dir", work, "--out", work / "model"],
                 "overlaps the work folder")
    assert no_runs(store)


# ---------------------------------------------------------------------------- work folders


def test_resume_never_makes_a_folder_of_the_users_cnntrees(tmp_path, capsys, store):
    mine = sentinel(tmp_path / "mine")
    before = snapshot(mine)
    expect_error(capsys, ["train", MORAVCIK, "--quick", "--resume", "--work-dir", mine], "--work-dir",
                 "not a cnntree work folder")
    assert snapshot(mine) == before and not (mine / MARKER).exists() and no_runs(store)
    # so a later training without --resume still refuses to delete it
    expect_error(capsys, ["train", MORAVCIK, "--quick", "--work-dir", mine], "not a cnntree work folder")
    assert snapshot(mine) == before


def previous_training(work: Path) -> dict:
    """A work folder as an earlier training left it: marked, with its checkpoints."""
    (work / "nodes" / "NN1").mkdir(parents=True)
    (work / "nodes" / "NN1" / "last.keras").write_bytes(b"checkpoint")
    (work / "training.json").write_text("{}")
    mark(work, "work")
    return snapshot(work)


TWO_NODES = [{"id": "r", "children": ["happy", "o"]},
             {"id": "o", "children": ["angry", "disgust", "fear", "sad", "surprise", "neutral"]}]


def wrong_init(tmp_path: Path, kind: str) -> str:
    """An ``init.from`` that cannot be used, of one kind."""
    if kind == "a missing spec":
        return "missing_flat.json"
    if kind == "an unknown run id":
        return "0123456789abcdef0123456789abcdef"
    if kind == "a tree":
        tree = parse_spec({"name": "t", "kind": "tree", "defaults": {"model": TINY_MODEL}, "nodes": TWO_NODES})
        nets = {n.id: create_model("lenet", n_outputs=len(n.groups), filters=[4, 8], dense=8) for n in tree.nodes}
        return str(save_model(CnnTreeClassifier.from_networks(tree, nets), tmp_path / "tree"))
    if kind == "an export":
        flat = single_model(tmp_path / "flat")
        assert main(["export", str(flat), "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
        return str(tmp_path / "onnx")
    if kind == "another architecture":
        return str(single_model(tmp_path / "flat", {"name": "lenet", "filters": [8, 16], "dense": 8}))
    if kind == "a path with ..":
        return str(tmp_path / "nowhere" / ".." / ".." / "flat")
    raise AssertionError(kind)


@pytest.mark.parametrize("kind,fragment", [
    ("a missing spec", "missing_flat.json"), ("an unknown run id", "0123456789abcdef"), ("a tree", "a tree"),
    ("an export", "an exported model"), ("another architecture", "cannot start from it"),
    ("a path with ..", "flat")])
def test_a_wrong_init_from_deletes_no_checkpoint_and_starts_no_run(tmp_path, capsys, store, kind, fragment):
    work = tmp_path / "work"
    work.mkdir()
    before = previous_training(work)
    source = wrong_init(tmp_path, kind)
    capsys.readouterr()
    spec = tmp_path / "warm.json"
    spec.write_text(json.dumps({"name": "warm", "kind": "tree", "init": {"from": source},
                                "defaults": {"model": TINY_MODEL}, "nodes": TWO_NODES}))
    expect_error(capsys, ["train", spec, "--quick", "--work-dir", work], "init.from", fragment)
    assert snapshot(work) == before and no_runs(store)


# ---------------------------------------------------------------------------- names that become paths


@pytest.mark.parametrize("name", ["/tmp/cnntree-victim", "../../outside", "..", "a/b"])
def test_an_experiment_name_keeps_its_artifacts_under_runs(tmp_path, monkeypatch, name):
    from cnntree.tracking import store

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    experiment_id = store.use_experiment(name)
    location = Path(mlflow.get_experiment(experiment_id).artifact_location.removeprefix("file://"))
    assert location.parent == (tmp_path / "runs" / "artifacts").resolve() and ".." not in location.name
    assert mlflow.get_experiment(experiment_id).name == name  # the name itself is kept


def test_an_evaluate_split_that_would_be_a_path_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", "small", "--split", "../../outside", "--explain", "2"])
    assert stop.value.code == 2 and "is not a safe name" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() and not (tmp_path.parent / "outside").exists()


# ---------------------------------------------------------------------------- a training that dies


@pytest.mark.slow
def test_a_training_that_died_is_ended_and_told_on_the_next_start(tmp_path, capsys, store):
    """A native crash leaves its run RUNNING (no Python code runs after SIGSEGV); the next training
    of its work folder ends it FAILED, says so in one line, and trains."""
    from cnntree.tracking import store as tracking

    tracking.use_experiment("crashed")
    run_id = mlflow.start_run(run_name="crashed").info.run_id
    mlflow.end_run()
    mlflow.MlflowClient().update_run(run_id, status="RUNNING")  # as a process that died in native code leaves it
    work = tmp_path / "work"
    work.mkdir()
    mark(work, "work")
    (work / "run.json").write_text(json.dumps({"run_id": run_id, "tracking_uri": f"sqlite:///{store}/mlflow.db"}))
    tiny = tmp_path / "tiny.json"  # what trains does not matter here: the smallest network
    tiny.write_text(json.dumps({"name": "tiny", "kind": "single", "defaults": {"model": TINY_MODEL,
                                                                             "train": {"epochs": 1}}}))
    capsys.readouterr()
    assert main(["train", str(tiny), "--work-dir", str(work), "--experiment", "crashed"]) == 0
    err = capsys.readouterr().err
    assert f"(MLflow run {run_id}) ended without finishing" in err and "--resume continues" in err
    assert mlflow.get_run(run_id).info.status == "FAILED"


# ---------------------------------------------------------------------------- bad input that raised internal errors


def test_a_cache_with_labels_out_of_range_is_rebuilt(tmp_path, sample):
    import numpy as np

    from cnntree.data import cache_dir, load_faces

    from ..helpers import write_csv

    rows = [(int(sample.labels[i]), sample.images[i], "Training") for i in range(30)]
    path = write_csv(tmp_path / "c.csv", rows)
    first = load_faces(path)
    for cached in cache_dir().glob("c.csv-*.npz"):
        with np.load(cached) as z:
            parts = dict(z)
        parts["labels"] = parts["labels"] + 50  # as a damaged or planted cache would hold
        with open(cached, "wb") as f:
            np.savez(f, **parts)
    again = load_faces(path)
    np.testing.assert_array_equal(first.labels, again.labels)


def test_a_cache_folder_that_cannot_be_written_costs_only_speed(tmp_path, capsys, monkeypatch):
    (tmp_path / "not_a_folder").write_text("a file where the cache folder would be")
    monkeypatch.setenv("CNNTREE_CACHE", str(tmp_path / "not_a_folder"))
    assert main(["data", str(MORAVCIK), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("argv", [["export", "small", "--format", "onnx", "--out", "/proc/cnntree/x"],
                                  ["show", str(MORAVCIK), "--png", "/proc/cnntree/x.png"]], ids=["export", "show"])
def test_an_output_where_no_folder_can_be_made(capsys, argv):
    expect_error(capsys, argv, "cannot create the folder /proc/cnntree")


@pytest.mark.parametrize("uri,fragment", [
    ("garbage://nowhere", "unknown scheme 'garbage'"), ("sqlite://two-slashes.db", "three or four slashes"),
    ("http://localhost:99999", "the port is not a number"), ("http://:5000", "no host"),
    ("databricks", "no Databricks credentials")])
def test_tracking_uris_mlflow_refuses_late_are_refused_at_once(tmp_path, capsys, monkeypatch, uri, fragment):
    monkeypatch.chdir(tmp_path)
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.databrickscfg
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    expect_error(capsys, ["compare"], "MLflow store", fragment)


def test_a_read_only_store_file_is_refused_at_once(tmp_path, capsys, monkeypatch):
    store_file = tmp_path / "ro.db"
    store_file.write_bytes(b"")
    store_file.chmod(0o444)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store_file}")
    expect_error(capsys, ["compare"], "is read-only")
    assert store_file.read_bytes() == b""


def test_running_out_of_memory_on_an_input_is_one_line(tmp_path, capsys, monkeypatch):
    import cnntree.data.load

    def too_big(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(cnntree.data.load, "read_csv", too_big)
    monkeypatch.setenv("CNNTREE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "big.csv").write_text("emotion,pixels,Usage\n")
    expect_error(capsys, ["data", str(MORAVCIK), "--data", tmp_path / "big.csv"], "out of memory")


# ---------------------------------------------------------------------------- wrong results without a word


def test_a_weighted_vote_of_members_with_zero_accuracy_is_their_plain_mean():
    import numpy as np

    from cnntree.compose.voting import SoftVote, WeightedVote

    outputs = {"a": np.array([[0.9, 0.1]]), "b": np.array([[0.3, 0.7]])}
    weighted = WeightedVote(["a", "b"], {"a": 0.0, "b": 0.0}).combine(outputs)
    assert np.isfinite(weighted).all()
    np.testing.assert_allclose(weighted, SoftVote(["a", "b"]).combine(outputs))


def test_a_finetune_loss_of_zero_weights_is_refused(tmp_path, capsys):
    raw = {"name": "zero", "kind": "tree", "defaults": {"model": TINY_MODEL}, "nodes": TWO_NODES,
           "finetune": {"epochs": 1, "loss": {"path": 0, "nodes": 0, "flat": 0}}}
    (tmp_path / "zero.json").write_text(json.dumps(raw))
    expect_error(capsys, ["validate", tmp_path / "zero.json"], "finetune.loss", "zero loss")


def test_explain_keeps_a_picture_per_image_of_the_same_name(tmp_path, capsys, sample):
    import cv2

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "face.png"), sample.images[0 if folder == "a" else 1])
    assert main(["explain", "small", str(tmp_path / "a" / "face.png"), str(tmp_path / "b" / "face.png"),
                 "--out", str(tmp_path / "out"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [Path(r["picture"]).name for r in rows] == ["face.explained.png", "face-2.explained.png"]
    assert all(Path(r["picture"]).is_file() for r in rows)


def test_a_folder_named_default_is_not_the_default_model(tmp_path, capsys, monkeypatch, sample):
    import cv2

    monkeypatch.chdir(tmp_path)
    sentinel(tmp_path / "default")  # the user's own folder, no model in it
    cv2.imwrite(str(tmp_path / "face.png"), sample.images[0])
    assert main(["predict", "face.png", "--json"]) == 0  # no model named: the shipped default
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_a_budget_error_never_prints_none(tmp_path, capsys):
    raw = {"name": "flat", "kind": "single", "defaults": {"model": TINY_MODEL, "train": {"epochs": 1}},
           "finetune": {"epochs": 0}}
    (tmp_path / "flat.json").write_text(json.dumps(raw))
    tree = {"name": "tree", "kind": "tree", "defaults": {"model": TINY_MODEL}, "nodes": TWO_NODES,
            "finetune": {"epochs": 3}}
    (tmp_path / "tree.json").write_text(json.dumps(tree))
    line = expect_error(capsys, ["compare-trees", tmp_path / "tree.json", tmp_path / "flat.json", "--budget-epochs",
                                 "3"], "--budget-epochs 3: too few for tree")
    assert "None" not in line


# ---------------------------------------------------------------------------- damaged or unusual state

TINY_SINGLE = {"name": "tiny1", "kind": "single", "defaults": {"model": TINY_MODEL, "train": {"epochs": 1}}}


@pytest.fixture(scope="module")
def trained_work(tmp_path_factory):
    """A finished tiny training's work folder and spec, trained once for the damage cases below."""
    import os

    root = tmp_path_factory.mktemp("resume")
    (root / "tiny1.json").write_text(json.dumps(TINY_SINGLE))
    before, uri = os.getcwd(), os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.chdir(root)
    try:
        assert main(["train", str(root / "tiny1.json"), "--work-dir", str(root / "work"), "--out",
                     str(root / "model")]) == 0
    finally:
        os.chdir(before)
        if uri is not None:
            os.environ["MLFLOW_TRACKING_URI"] = uri
    return root


def damage(work: Path, how: str) -> None:
    state, record, checkpoint = work / "nodes" / "net" / "state.json", work / "training.json", \
        work / "nodes" / "net" / "last.keras"
    if how == "state truncated":
        state.write_text(state.read_text()[:20])
    elif how == "state not an object":
        state.write_text("[1, 2]")
    elif how == "record truncated":
        record.write_text(record.read_text()[:30])
    elif how == "record not an object":
        record.write_text('"hello"')
    elif how == "checkpoint truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:500])
    elif how == "checkpoint of another network":
        other = create_model("lenet", n_outputs=3, filters=[4, 8], dense=8)
        other.compile(optimizer="adam", loss="categorical_crossentropy")
        other.save(checkpoint)


@pytest.mark.slow
@pytest.mark.parametrize("how,fragment", [
    ("state truncated", "state.json"), ("state not an object", "damaged checkpoint state"),
    ("record truncated", "training.json"), ("record not an object", "damaged training record"),
    ("checkpoint truncated", "damaged checkpoint"), ("checkpoint of another network", "3 outputs where")])
def test_resuming_a_damaged_work_folder_is_one_line(tmp_path, capsys, monkeypatch, trained_work, how, fragment):
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "work"
    shutil.copytree(trained_work / "work", work)
    damage(work, how)
    expect_error(capsys, ["train", trained_work / "tiny1.json", "--resume", "--epochs", "2", "--work-dir", work],
                 fragment)


@pytest.mark.parametrize("content", ["{not json", "[1, 2, 3]", '{"name": "default", "private_accuracy": "high"}'],
                         ids=["not JSON", "a list", "figures that are not numbers"])
def test_models_reads_a_damaged_card_without_a_crash(tmp_path, capsys, monkeypatch, content):
    import cnntree.pretrained

    shutil.copytree(cnntree.pretrained.HERE / "small", tmp_path / "small")
    (tmp_path / "small" / "card.json").write_text(content)
    monkeypatch.setattr(cnntree.pretrained, "HERE", tmp_path)
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "small:" in out and "card damaged" in out


@pytest.mark.parametrize("overrides", [{"colour": "blue"}, {"epochs": "many"}, {"test_time": 7}],
                         ids=["unknown key", "wrong type", "wrong choice type"])
def test_a_model_whose_recorded_overrides_are_damaged(tmp_path, capsys, overrides):
    model = single_model(tmp_path / "m")
    meta = json.loads((model / "meta.json").read_text())
    meta["overrides"] = overrides
    (model / "meta.json").write_text(json.dumps(meta))
    expect_error(capsys, ["evaluate", model], "meta.json: damaged overrides")


def test_suggest_init_from_an_ensemble_is_refused(tmp_path, capsys):
    members = [single_model(tmp_path / f"m{k}", seed=k) for k in range(2)]
    assert main(["ensemble", *map(str, members), "--out", str(tmp_path / "e")]) == 0
    expect_error(capsys, ["suggest", tmp_path / "e", "--init", "--out", tmp_path / "s.json"], "--init", "is a voting")
    assert not (tmp_path / "s.json").exists()


@pytest.mark.slow
def test_compare_against_a_spec_with_only_quick_runs_says_so(tmp_path, capsys, store):
    (tmp_path / "tiny1.json").write_text(json.dumps(TINY_SINGLE))
    assert main(["train", str(tmp_path / "tiny1.json"), "--quick", "--out", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    expect_error(capsys, ["compare", "--against", "tiny1"], "has only --quick runs")
