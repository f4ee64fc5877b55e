"""What the tests share: the repository's paths, small data files and folders, the tiny model
and specs every training test uses, and the command line in a process of its own."""

import contextlib
import gzip
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from cnntree.spec import parse_spec

ROOT = Path(__file__).resolve().parents[1]
MORAVCIK = ROOT / "trees" / "moravcik.json"
FULL_FER2013 = ROOT.parent / "shared" / "data" / "fer2013.csv.gz"


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


def training_rows(data, per_class=60):
    """The first ``per_class`` training faces of each class, in the data's order: what a test of
    behaviour rather than accuracy trains on (a third of the sample's time)."""
    train = np.flatnonzero(data.splits == "Training")
    return np.sort(np.concatenate([train[data.labels[train] == label][:per_class] for label in range(len(data.classes))]))


def write_folder(root: Path, data, per_class=5, split=None):
    import cv2

    for label, name in enumerate(data.classes):
        folder = root / split / name if split else root / name
        folder.mkdir(parents=True, exist_ok=True)
        for k, i in enumerate(np.flatnonzero(data.labels == label)[:per_class]):
            cv2.imwrite(str(folder / f"S{k:03d}_{name}_{i}.png"), data.images[i])
    return root


def run_cli(*args):
    """Run ``cnntree`` in this process (what a command does, without paying for a Python start);
    returns (code, stdout, stderr) as a user would see them."""
    from cnntree import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def run_cli_process(*args, env=None):
    """Run ``cnntree`` in a fresh process, where the process is what is tested (start-up, native
    output, environment); returns (code, stdout, stderr)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "cnntree.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=os.getcwd(), env=env, timeout=900)
    return proc.returncode, proc.stdout, proc.stderr


TINY_MODEL = {"name": "lenet", "filters": [4, 8], "dense": 8}


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



def tiny_spec(kind="tree", **extra):
    raw = {"name": "tiny", "kind": kind,
           "defaults": {"model": TINY_MODEL, "train": {"epochs": 2, "batch_size": 32, "seed": 1}}, **extra}
    if kind == "tree" and "nodes" not in extra:
        raw["nodes"] = [{"id": "root", "children": ["happy", "rest"]},
                        {"id": "rest", "children": ["angry", "disgust", "fear", "sad", "surprise", "neutral"],
                         "balance": "none"}]
    return parse_spec(raw)


README = ROOT / "README.md"


def readme_commands(text: str) -> list[tuple[str, list[str]]]:
    """Each ``$ cnntree ...`` line of the README's console blocks, its comment removed, with the
    output lines printed under it."""
    commands = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append((line[2:].split("  #")[0].strip(), []))
            elif commands:
                commands[-1][1].append(line)
    return commands


def runs_on_bundled_data(command: str) -> bool:
    """Commands that need the full FER2013 (``path/to/``, ``--data fer2013.csv.gz``) or a camera, and
    ``serve`` (a server runs until stopped: tests/test_serve.py drives it in a browser), are not run
    here; every other README command is."""
    return command.startswith("cnntree ") and "fer2013.csv" not in command and "path/to/" not in command \
        and "webcam" not in command and not command.startswith("cnntree serve")
