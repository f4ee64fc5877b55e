"""What a new user meets first: shipped files without machine paths, the data a command read said
in one line, faces found in photos, quiet pipes and imports, counts that add up, answers to
trivial mistakes before any backend loads."""

import json
import os
import re
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest

from cnntree.compose.calibration import TemperatureScaling
from cnntree.data.balance import make_balancer
from cnntree.evaluation.reports import evaluation_table, write_evaluation
from cnntree.tracking.runs import over_seeds

from .helpers import ROOT, run_cli

MACHINE_PATH = re.compile(rb"(?<![\w.~-])/(home|work|tmp|root|Users|mnt|srv|opt|var|data)/|[A-Z]:\\\\")


def shipped_texts():
    """Every file under cnntree/pretrained, and every member of its zip files (.keras)."""
    for path in sorted((ROOT / "cnntree" / "pretrained").rglob("*")):
        if not path.is_file():
            continue
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    yield f"{path.name}:{member}", archive.read(member)
        else:
            yield path.name, path.read_bytes()


def test_shipped_files_hold_no_machine_path():
    read = dict(shipped_texts())
    assert any(name.endswith("meta.json") for name in read) and any(":" in name for name in read)
    assert not [name for name, data in read.items() if MACHINE_PATH.search(data)]
    assert MACHINE_PATH.search(b'"data": "/' + b'home/me/fer2013.csv"')  # the pattern can fail


def test_a_closed_pipe_ends_quietly():
    """``cnntree show SPEC | head -0``: the reader has gone; no traceback, no error line."""
    read, write = os.pipe()
    os.close(read)
    proc = subprocess.run([sys.executable, "-m", "cnntree.cli", "show", str(ROOT / "trees" / "moravcik.json")],
                          stdout=write, stderr=subprocess.PIPE, text=True, timeout=60)
    os.close(write)
    assert proc.returncode == 141 and proc.stderr == ""


def test_mistakes_are_answered_before_any_backend_loads(tmp_path):
    code = ("import sys; from cnntree.cli import main\n"
            "codes = [main(['predict', 'nonexist.png']), main(['evaluate', 'nothere']),"
            " main(['evaluate', 'default', '--data', 'missing.csv'])]\n"
            "print(codes, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.stdout.strip() == "[2, 2, 2] False False", proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == "cnntree: error: nonexist.png: no such image file"
    assert lines[1].startswith("cnntree: error: nothere: no such model directory")
    assert lines[2].endswith("missing.csv: no such file or folder")


def test_compare_in_an_empty_folder_creates_no_store(tmp_path):
    code, out, err = run_cli("compare")
    assert code == 0 and "no cnntree runs yet" in out, err
    assert not os.path.exists("runs")
    code, _, err = run_cli("compare", "--experiment", "nothing")
    assert code == 2 and "no store yet" in err and not os.path.exists("runs")


def test_a_seed_run_again_counts_once():
    def run(seed, accuracy):
        return {"status": "FINISHED", "spec": "s", "data": "d", "quick": False, "seed": seed,
                "metrics": {"private_accuracy": accuracy}}

    (group,) = over_seeds([run("0", 0.5), run("0", 0.3), run("1", 0.7)], "private_accuracy")  # newest first
    assert group["seeds"] == 2 and group["mean"] == pytest.approx(0.6) and group["std"] == pytest.approx(0.1)


def test_balancing_rules_say_what_they_do():
    assert make_balancer({"strategy": "oversample", "ratio": 0.8}).rule == "each group resampled to 0.8 x the largest"
    assert make_balancer({"strategy": "one_vs_rest"}).rule == "each group drawn down to the smallest"
    assert make_balancer({"strategy": "none"}).rule == "every face once"


def test_the_printed_training_counts_are_the_counts_used(sample, tmp_path):
    """A capped network (``--quick``: 512 faces) says so, and its per-group counts sum to what it trains on."""
    from cnntree.spec import parse_spec, with_overrides
    from cnntree.training.nodes import network_job

    from .helpers import TINY_MODEL

    spec = with_overrides(parse_spec({"name": "t", "kind": "tree", "defaults": {"model": TINY_MODEL},
                                      "nodes": [{"id": "root", "children": ["happy", "rest"], "balance": "oversample"},
                                                {"id": "rest", "children": ["angry", "disgust", "fear", "sad",
                                                                            "surprise", "neutral"]}]}), quick=True)
    train = sample.splits == "Training"
    validation = (sample.images[~train], sample.labels[~train])
    lines = []
    job, _ = network_job(spec, spec.nodes[1], "rest", sample.images[train], sample.labels[train], validation,
                         tmp_path, lines.append)
    line = lines[-1]
    counts = [int(n) for n in re.search(r"the first 512 kept: \[([\d, ]+)\]", line)[1].split(",")]
    assert line.startswith("[rest] angry | disgust | fear | sad | surprise | neutral: 512 training faces (each group "
                           "resampled to 0.8 x the largest: [180, 180, 180, 180, 180, 180] -> [144, 144, 144, 144, "
                           "144, 144], the first 512 kept: ")
    assert sum(counts) == 512 == len(job.train[1])


def test_a_single_network_prints_one_row_and_draws_one_confusion_per_split(tmp_path):
    """Its routing modes are one answer: one table row, one confusion picture, where a tree's modes
    get one each."""
    report = {"angry": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 1}, "accuracy": 0.5}
    modes = {mode: {"accuracy": 0.5, "macro_f1": 0.4, "weighted_f1": 0.45, "report": report,
                    "confusion": [[1, 0], [1, 0]]} for mode in ("soft", "hard")}
    single = {"kind": "single", "default_mode": "soft", "modes": modes, "nodes": {"net": {"report": report}}}
    tree = {**single, "kind": "tree"}
    assert len(evaluation_table([("PrivateTest", single)]).splitlines()) == 2
    assert len(evaluation_table([("PrivateTest", tree)]).splitlines()) == 3
    pictures = {kind: sorted(p.name for p in write_evaluation(result, ["angry", "sad"], "PrivateTest", tmp_path / kind)
                             if p.suffix == ".png")
                for kind, result in (("single", single), ("tree", tree))}
    assert pictures["single"] == ["PrivateTest_soft_confusion.png"]
    assert pictures["tree"] == ["PrivateTest_hard_confusion.png", "PrivateTest_soft_confusion.png"]
    assert "== PrivateTest, hard ==" not in (tmp_path / "single" / "PrivateTest_report.txt").read_text()


def test_a_calibration_that_ends_at_its_bound_says_so():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 3, 400)
    wrong = 0.05 + 0.85 * np.eye(3)[(targets + 1) % 3]  # confidently wrong: T runs to its bound of 1000
    fitted = TemperatureScaling().fit(wrong, targets)
    assert fitted.at_bound and fitted.state["temperature"] == pytest.approx(1e3)
    informative = 0.5 * rng.dirichlet(np.full(3, 0.3), 400) + 0.5 * np.eye(3)[targets]
    fitted = TemperatureScaling().fit(informative, targets)
    assert not fitted.at_bound and 1e-3 < fitted.state["temperature"] < 1e3


def write_photo(sample, path, n=3):
    from cnntree.live.scenes import background, grid_boxes, render

    happy = np.flatnonzero(sample.labels == sample.classes.index("happy"))
    cv2.imwrite(str(path), render(sample.images[happy[:n]], grid_boxes(n), background()))
    return path


def test_faces_are_found_in_photos_as_the_mirror_finds_them(sample, tmp_path):
    from cnntree.data import read_grey
    from cnntree.live.detect import FaceDetector, faces_in_photo

    photo = read_grey(write_photo(sample, tmp_path / "group.jpg"))
    found = faces_in_photo(photo, FaceDetector())
    assert found.found == "3 face(s) found" and found.faces.shape == (3, 48, 48)
    assert list(found.boxes[:, 0]) == sorted(found.boxes[:, 0])  # left to right
    whole = faces_in_photo(photo, None)
    assert whole.found == "whole image (--no-detect)" and whole.boxes.tolist() == [[0, 0, 640, 480]]
    crop = faces_in_photo(sample.images[0], FaceDetector())
    assert crop.found == "whole image (a face crop: 48x48)" and np.array_equal(crop.faces[0], sample.images[0])
    blank = faces_in_photo(np.full((300, 300), 128, np.uint8), FaceDetector())
    assert blank.found == "whole image (no face found)"


@pytest.mark.slow
def test_predict_mirror_and_evaluate_say_what_they_read(sample, tmp_path):
    photo = write_photo(sample, tmp_path / "group.jpg")
    code, out, err = run_cli("predict", "small", photo, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["face"] for r in rows] == [1, 2, 3] and all(r["found"] == "3 face(s) found" for r in rows)
    assert all(r["label"] == "happy" for r in rows) and f"{photo}: 3 face(s) found" in err
    code, out, err = run_cli("predict", "small", photo, "--no-detect")
    assert code == 0 and out.count("\n") == 1 and out.startswith(f"{photo}: "), err
    code, out, err = run_cli("mirror", "small", "--source", photo, "--json")
    summary = json.loads(out)
    assert code == 0 and len(summary["tracks"]) == 3 and {t["label"] for t in summary["tracks"]} == {"happy"}
    code, out, err = run_cli("mirror", "small", "--source", photo)
    assert code == 0 and len(re.findall(r"^face \d at \d+,\d+ \d+x\d+: happy 0\.\d\d$", out, re.M)) == 3
    code, out, err = run_cli("evaluate", "small", "--split", "PublicTest", "--json")
    result = json.loads(out)
    assert code == 0 and result["split"] == "PublicTest" and result["faces"] == 245
    assert result["data"].endswith("fer2013_sample.csv.gz")
    assert f"data: {result['data']}, PublicTest: 245 faces" in err


@pytest.mark.slow
def test_the_python_api_is_quiet_and_predicts_labels(tmp_path):
    code = ("import numpy as np, cnntree\nfrom cnntree import load_model\nclf = load_model('small')\n"
            "print(' '.join(clf.predict(np.zeros((2, 48, 48), np.uint8))))\n"
            "try:\n    clf.predict([np.zeros((90, 80), np.uint8), np.zeros((60, 60), np.uint8)])\n"
            "except cnntree.CnnTreeError as error:\n    print(error)\n"
            "from cnntree import CnnTreeClassifier\nfrom cnntree.spec import parse_spec\n"
            "spec = parse_spec({'name': 't', 'kind': 'single', 'defaults': {'model': {'name': 'lenet', 'filters': [4],"
            " 'dense': 4}, 'train': {'epochs': 2, 'batch_size': 16}}})\n"
            "rng = np.random.default_rng(0)\nfaces, labels = rng.integers(0, 255, (64, 48, 48)), np.arange(64) % 7\n"
            "CnnTreeClassifier(spec).fit(faces, labels, (faces[:14], labels[:14]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    # TensorFlow 2.21 sometimes logs one native INFO line when its first data pipeline starts,
    # past TF_CPP_MIN_LOG_LEVEL; anything else on standard error fails
    assert re.sub(r"^I0000 [^\n]* generator_dataset_op\.cc:\d+\] Memory patch applied[^\n]*\n", "", proc.stderr) == ""
    labels, error = proc.stdout.splitlines()
    assert set(labels.split()) <= {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert error.startswith("images: expected (n, 48, 48) grey faces of 0-255 (or n rows of 2304 pixels), got a "
                            "list of arrays of different shapes")
