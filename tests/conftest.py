import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from cnntree import save_model

ROOT = Path(__file__).resolve().parents[1]
MORAVCIK = ROOT / "trees" / "moravcik.json"
FULL_FER2013 = ROOT.parent / "shared" / "data" / "fer2013.csv.gz"


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


def write_csv(path: Path, rows, header="emotion,pixels,Usage"):
    """Rows are (emotion, pixels: str or array, usage) tuples; ``.gz`` paths are gzipped."""
    lines = [header]
    for emotion, pixels, usage in rows:
        if not isinstance(pixels, str):
            pixels = " ".join(map(str, np.asarray(pixels).ravel().tolist()))
        lines.append(f"{emotion},{pixels},{usage}")
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def rows_from(data, n_per_class=4):
    rows = []
    for label in range(len(data.classes)):
        for i in np.flatnonzero(data.labels == label)[:n_per_class]:
            rows.append((int(data.labels[i]), data.images[i], str(data.splits[i])))
    return rows


@pytest.fixture
def small_csv(tmp_path, sample):
    return write_csv(tmp_path / "small.csv", rows_from(sample))


def write_folder(root: Path, data, per_class=5, split=None):
    import cv2

    for label, name in enumerate(data.classes):
        folder = root / split / name if split else root / name
        folder.mkdir(parents=True, exist_ok=True)
        for k, i in enumerate(np.flatnonzero(data.labels == label)[:per_class]):
            cv2.imwrite(str(folder / f"S{k:03d}_{name}_{i}.png"), data.images[i])
    return root


def run_cli(*args):
    """Run ``cnntree`` in a subprocess, as a user would; returns (code, stdout, stderr)."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "cnntree.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=os.getcwd(), env=env, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


TINY_MODEL = {"name": "lenet", "filters": [4, 8], "dense": 8}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, sample):
    """A small tree (happy vs the rest, then the six others) trained 2 epochs on the sample, saved."""
    from cnntree import CnnTreeClassifier
    from cnntree.spec import parse_spec

    spec = parse_spec({"name": "tiny", "kind": "tree",
                       "defaults": {"model": TINY_MODEL, "train": {"epochs": 2, "batch_size": 32, "seed": 1}},
                       "nodes": [{"id": "root", "children": ["happy", "rest"]},
                                 {"id": "rest", "children": ["angry", "disgust", "fear", "sad", "surprise", "neutral"],
                                  "balance": "none"}]})
    root = tmp_path_factory.mktemp("tiny_model")
    train, val = sample.splits == "Training", sample.splits == "PublicTest"
    clf = CnnTreeClassifier(spec, work_dir=root / "work", printer=lambda *_: None).fit(
        sample.images[train], sample.labels[train], (sample.images[val], sample.labels[val]))
    return save_model(clf, root / "model")


def train_grown_tree(folder: Path, tree: str, model: dict) -> dict:
    """``cnntree train trees/<tree> --quick`` with ``model`` and a one-epoch flat spec of it trained
    first (``init.from``) in ``folder``; the finished parent run and its child runs by name."""
    import json

    from mlflow.tracking import MlflowClient

    from cnntree import cli

    raw = json.loads((ROOT / "trees" / tree).read_text())
    raw["defaults"]["model"] = model
    raw["init"]["from"] = "flat.json"
    (folder / tree).write_text(json.dumps(raw))
    (folder / "flat.json").write_text(json.dumps({"name": "flat", "kind": "single", "defaults": {
        "model": model, "train": {"epochs": 1}}}))
    assert cli.main(["train", str(folder / tree), "--quick"]) == 0
    client = MlflowClient(f"sqlite:///{Path.cwd()}/runs/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("fer2013-sample").experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return {"parent": parent,
            **{r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}}
