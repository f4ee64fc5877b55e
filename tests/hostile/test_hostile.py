"""Hostile input across every command: exit status 2, one line naming the file/field/row, no traceback.

Most cases call ``cnntree.cli.main`` in this process (what the console script runs, minus the
interpreter start); a few run the real command in a subprocess. Each case is one parameter row,
so ``pytest tests/hostile -v`` lists them by command.
"""

import json
import os
import zipfile

import cv2
import numpy as np
import pytest

from cnntree.cli import main

from ..helpers import MORAVCIK, ROOT, run_cli_process, write_csv, write_folder

GOOD = json.loads((ROOT / "trees" / "moravcik.json").read_text())


def spec_file(tmp_path, change):
    raw = json.loads(json.dumps(GOOD))
    change(raw)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(raw))
    return path


def expect_error(capsys, argv, *fragments, code=2):
    """Run ``cnntree argv``; assert the status, one ``cnntree: error:`` line holding every fragment."""
    status = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == code, err
    assert "Traceback" not in err and "internal error" not in err, err
    errors = [line for line in lines if line.startswith("cnntree: error:") or ": error: " in line]
    assert len(errors) == 1, err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


# ---------------------------------------------------------------------------- specs (validate)

def _del_class(raw):
    raw["nodes"][3]["children"].remove("surprise")


SPEC_CASES = {
    "wrong type of epochs": (lambda r: r["defaults"]["train"].update(epochs="ten"),
                             "defaults.train.epochs: expected an integer, got a string"),
    "negative epochs": (lambda r: r["defaults"]["train"].update(epochs=-3), "defaults.train.epochs: -3 is out of range"),
    "absurd batch size": (lambda r: r["defaults"]["train"].update(batch_size=10 ** 9),
                          "defaults.train.batch_size: 1000000000 is out of range"),
    "no loader workers": (lambda r: r["defaults"]["train"].update(workers=0), "defaults.train.workers: 0 is out of range"),
    "absurd filter count": (lambda r: r["defaults"]["model"].update(filters=[64, 10 ** 7]),
                            "defaults.model.filters[1]"),
    "unknown model name": (lambda r: r["defaults"]["model"].update(name="resnet9000"), 'unknown value "resnet9000"'),
    "unknown model parameter": (lambda r: r["defaults"]["model"].update(widht=2), 'unknown key "widht"'),
    "a cycle": (lambda r: r["nodes"][3]["children"].append("NN2"), "NN2"),
    "a class twice": (lambda r: r["nodes"][2]["children"].append("happy"), '"happy" already appears'),
    "a missing class": (_del_class, "surprise"),
    "a misspelt class": (lambda r: r["nodes"][0]["children"].__setitem__(0, "feer"), 'did you mean "fear"'),
    "nodes not a list": (lambda r: r.update(nodes=7), "nodes: expected a list, got a number"),
}


@pytest.mark.parametrize("case", SPEC_CASES, ids=list(SPEC_CASES))
def test_validate_rejects_bad_specs(tmp_path, capsys, case):
    change, fragment = SPEC_CASES[case]
    expect_error(capsys, ["validate", spec_file(tmp_path, change)], "spec.json", fragment)


@pytest.mark.parametrize("text,fragment", [
    ('{"name": "x",', "invalid JSON"),
    ("", "invalid JSON"),
    ('{"name": "a", "name": "b"}', 'duplicate key "name"'),
    ("[1, 2]", "a spec is a JSON object"),
], ids=["truncated JSON", "empty file", "duplicate key", "a list"])
def test_validate_rejects_bad_json(tmp_path, capsys, text, fragment):
    (tmp_path / "bad.json").write_text(text)
    expect_error(capsys, ["validate", tmp_path / "bad.json"], "bad.json", fragment)


def test_spec_that_is_binary(tmp_path, capsys):
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    expect_error(capsys, ["validate", tmp_path / "bin.json"], "bin.json: cannot read spec")


def test_spec_that_is_a_folder(tmp_path, capsys):
    expect_error(capsys, ["show", tmp_path], str(tmp_path), "is a folder")


def test_missing_spec_for_train(tmp_path, capsys):
    expect_error(capsys, ["train", tmp_path / "nope.json", "--quick"], "nope.json: no such spec file")


# ---------------------------------------------------------------------------- data (data, train)

def test_truncated_gzip(tmp_path, capsys, sample):
    good = write_csv(tmp_path / "good.csv.gz", [(int(sample.labels[i]), sample.images[i], "Training") for i in range(50)])
    (tmp_path / "cut.csv.gz").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    expect_error(capsys, ["data", MORAVCIK, "--data", tmp_path / "cut.csv.gz"], "cut.csv.gz", "gzip")


def test_wrong_pixel_count_names_the_line(tmp_path, capsys, small_csv):
    lines = small_csv.read_text().splitlines()
    lines[3] = lines[3].replace(" 0 ", " ", 1) if " 0 " in lines[3] else lines[3].rsplit(" ", 1)[0] + "," + lines[3].split(",")[-1]
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    expect_error(capsys, ["data", MORAVCIK, "--data", tmp_path / "bad.csv"], "bad.csv: line 4")


def test_nan_text_in_pixels(tmp_path, capsys, small_csv):
    lines = small_csv.read_text().splitlines()
    emotion, pixels, usage = lines[2].split(",")
    lines[2] = ",".join([emotion, "NaN " + pixels.split(" ", 1)[1], usage])
    (tmp_path / "nan.csv").write_text("\n".join(lines) + "\n")
    expect_error(capsys, ["data", MORAVCIK, "--data", tmp_path / "nan.csv"], "nan.csv: line 3")


def test_an_empty_test_split(tmp_path, capsys, sample):
    rows = [(int(sample.labels[i]), sample.images[i], "Training") for i in range(300)]
    write_csv(tmp_path / "train_only.csv", rows)
    expect_error(capsys, ["data", MORAVCIK, "--data", tmp_path / "train_only.csv"], "train_only.csv")


def test_a_class_with_no_samples_after_a_subset(tmp_path, capsys, sample):
    keep = np.flatnonzero(sample.labels != sample.classes.index("disgust"))
    write_csv(tmp_path / "no_disgust.csv", [(int(sample.labels[i]), sample.images[i], str(sample.splits[i])) for i in keep])
    expect_error(capsys, ["data", MORAVCIK, "--data", tmp_path / "no_disgust.csv"], "disgust")


def test_missing_pixels_column(tmp_path, capsys):
    (tmp_path / "cols.csv").write_text("emotion,pics,Usage\n0,1 2 3,Training\n")
    expect_error(capsys, ["data", MORAVCIK, "--data", tmp_path / "cols.csv"], "cols.csv: line 1: missing column")


def test_images_that_are_not_images(tmp_path, capsys, sample):
    root = write_folder(tmp_path / "faces", sample, per_class=3)
    (root / "happy" / "notes.png").write_text("I am not a picture")
    expect_error(capsys, ["data", MORAVCIK, "--data", root], "notes.png")


def test_a_folder_with_no_classes(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    expect_error(capsys, ["data", MORAVCIK, "--data", tmp_path / "empty"], "empty: no class folders")


def test_an_empty_class_folder(tmp_path, capsys, sample):
    root = write_folder(tmp_path / "faces", sample, per_class=3)
    for f in (root / "sad").iterdir():
        f.unlink()
    expect_error(capsys, ["data", MORAVCIK, "--data", root], "sad: empty class folder")


def test_a_symlink_loop_is_not_followed(tmp_path, capsys, sample):
    root = tmp_path / "faces"
    for split in ("Training", "PublicTest", "PrivateTest"):
        write_folder(root, sample, per_class=10, split=split)
    os.symlink(root, root / "Training" / "happy" / "loop")  # a folder inside a class folder, pointing up
    assert main(["data", str(MORAVCIK), "--data", str(root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sum(out["splits"].values()) == 3 * 7 * 10  # every image once, none through the loop


@pytest.mark.parametrize("argv,fragment", [
    (["augment", MORAVCIK, "--node", "NN9", "--out", "x.png"], 'no node "NN9" (did you mean "NN4"?)'),
    (["compare", "--experiment", "nope"], 'no MLflow experiment "nope"'),
], ids=["augment: unknown node", "compare: unknown experiment"])
def test_augment_and_compare(tmp_path, capsys, monkeypatch, argv, fragment):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    expect_error(capsys, argv, fragment)


def test_an_unsupported_data_file(tmp_path, capsys):
    (tmp_path / "faces.txt").write_text("hello")
    expect_error(capsys, ["data", MORAVCIK, "--data", tmp_path / "faces.txt"], "faces.txt: unsupported data source")


# ---------------------------------------------------------------------------- models (evaluate, predict, export)

def test_missing_model_directory(tmp_path, capsys):
    expect_error(capsys, ["evaluate", tmp_path / "nothing"], "nothing: no such model directory")


@pytest.fixture
def face_png(tmp_path, sample):
    cv2.imwrite(str(tmp_path / "face.png"), sample.images[0])
    return tmp_path / "face.png"


def test_a_folder_that_is_not_a_model(tmp_path, capsys, face_png):
    expect_error(capsys, ["predict", tmp_path / "empty-model", face_png], "no such model directory")
    (tmp_path / "folder").mkdir()
    expect_error(capsys, ["predict", tmp_path / "folder", face_png], "not a cnntree model directory")


def test_corrupt_meta(tmp_path, capsys, tiny_model):
    import shutil

    copy = shutil.copytree(tiny_model, tmp_path / "m")
    (copy / "meta.json").write_text("{not json")
    expect_error(capsys, ["evaluate", copy], "meta.json: invalid JSON")


def test_corrupt_network_file(tmp_path, capsys, tiny_model):
    import shutil

    copy = shutil.copytree(tiny_model, tmp_path / "m")
    (copy / "networks" / "root.keras").write_bytes(b"PK\x03\x04 garbage")
    expect_error(capsys, ["evaluate", copy], "root.keras: cannot load network")


def test_a_keras_file_from_another_program_is_never_unpickled(tmp_path, capsys, tiny_model):
    """A .keras archive whose config asks for a Python lambda: safe_mode refuses it, nothing runs."""
    import shutil

    copy = shutil.copytree(tiny_model, tmp_path / "m")
    marker = tmp_path / "pwned"
    config = {"module": "keras.layers", "class_name": "Lambda", "config": {
        "name": "evil", "function": {"class_name": "__lambda__", "config": {
            "code": f"open({str(marker)!r}, 'w').write('x')", "defaults": None, "closure": None}}}}
    with zipfile.ZipFile(copy / "networks" / "root.keras", "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", b"")
    expect_error(capsys, ["evaluate", copy], "root.keras: cannot load network")
    assert not marker.exists()


def test_a_network_file_missing(tmp_path, capsys, tiny_model, face_png):
    import shutil

    copy = shutil.copytree(tiny_model, tmp_path / "m")
    (copy / "networks" / "rest.keras").unlink()
    expect_error(capsys, ["predict", copy, face_png], "rest.keras: missing network file")


def test_a_model_trained_on_other_classes_than_the_data(tmp_path, capsys, tiny_model, sample):
    rows = [(int(sample.labels[i]), sample.images[i], str(sample.splits[i])) for i in range(len(sample.labels))]
    write_csv(tmp_path / "eight.csv", rows + [(7, sample.images[0], "PrivateTest")])
    expect_error(capsys, ["evaluate", tiny_model, "--data", tmp_path / "eight.csv"], "eight.csv")


def test_predict_on_a_text_file(tmp_path, capsys, tiny_model):
    (tmp_path / "face.png").write_text("text")
    expect_error(capsys, ["predict", tiny_model, tmp_path / "face.png"], "face.png: unreadable image")


def test_evaluate_on_an_unknown_split(capsys, tiny_model):
    expect_error(capsys, ["evaluate", tiny_model, "--split", "Tuesday"], '--split: no test split "Tuesday"')


# ---------------------------------------------------------------------------- mirror and rehearse

@pytest.mark.parametrize("name,content,fragment", [
    ("zero.mp4", b"", "zero.mp4: empty file"),
    ("text.mp4", b"this is text, not a video\n" * 40, "text.mp4: unreadable video"),
    ("photo.jpg", b"\x00\x01 broken", "photo.jpg: unreadable image"),
], ids=["zero-byte video", "text named .mp4", "broken photo"])
def test_mirror_bad_files(tmp_path, capsys, tiny_model, name, content, fragment):
    (tmp_path / name).write_bytes(content)
    expect_error(capsys, ["mirror", tiny_model, "--source", tmp_path / name], fragment)


def test_mirror_camera_that_does_not_exist(capsys, tiny_model):
    expect_error(capsys, ["mirror", tiny_model, "--source", "42"], "--source 42: no camera 42")


def test_mirror_source_is_a_folder(tmp_path, capsys, tiny_model):
    expect_error(capsys, ["mirror", tiny_model, "--source", tmp_path], "is a folder")


def test_rehearse_with_a_broken_script(tmp_path, capsys, tiny_model):
    (tmp_path / "script.json").write_text(json.dumps([{"start": 0, "end": 1, "expected": "joy"}]))
    expect_error(capsys, ["rehearse", tiny_model, "--script", tmp_path / "script.json", "--source", "0",
                          "--out", tmp_path / "r.md"], "script.json: segments[0].expected", '"joy"')


def test_rehearse_on_a_photo(tmp_path, capsys, tiny_model, sample):
    cv2.imwrite(str(tmp_path / "p.png"), sample.images[0])
    expect_error(capsys, ["rehearse", tiny_model, "--script", ROOT / "examples" / "rehearsal_script.json",
                          "--source", tmp_path / "p.png", "--out", tmp_path / "r.md"], "needs a video")


@pytest.mark.parametrize("argv,fragment", [
    (["mirror", "M", "--source", "0", "--smoothing", "1.5"], "--smoothing"),
    (["export", "M", "--format", "pdf", "--out", "x"], "--format"),
    (["train", MORAVCIK, "--epochs", "0"], "--epochs"),
    (["train", MORAVCIK, "--jobs", "0"], "--jobs"),
    (["compare-trees", MORAVCIK, "--jobs", "-2"], "--jobs"),
    (["train", MORAVCIK, "--workers", "0"], "--workers"),
], ids=["smoothing out of range", "unknown export format", "zero epochs", "zero jobs", "negative jobs", "zero workers"])
def test_bad_options_are_usage_errors(capsys, argv, fragment):
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and fragment in err and "Traceback" not in err


# ---------------------------------------------------------------------------- MLflow

@pytest.mark.slow
def test_an_unreachable_tracking_server_is_a_clear_error_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    expect_error(capsys, ["train", MORAVCIK, "--quick", "--work-dir", tmp_path / "work"],
                 "MLflow server http://127.0.0.1:9: unreachable", "MLFLOW_TRACKING_URI")
    assert not (tmp_path / "work").exists()  # it failed before any training


def test_an_unreachable_ray_cluster_is_a_clear_error_before_training(tmp_path, capsys):
    pytest.importorskip("ray")
    expect_error(capsys, ["train", MORAVCIK, "--quick", "--ray", "127.0.0.1:9", "--work-dir", tmp_path / "work"],
                 "--ray 127.0.0.1:9: no Ray cluster answers there")
    assert not (tmp_path / "work").exists()


def test_the_real_command_prints_one_line_for_a_bad_spec(tmp_path):
    (tmp_path / "s.json").write_text('{"name": 3}')
    code, stdout, stderr = run_cli_process("validate", tmp_path / "s.json")
    assert code == 2 and stdout == ""
    assert [line for line in stderr.splitlines() if line.startswith("cnntree")] == \
        [f"cnntree: error: {tmp_path / 's.json'}: name: expected a non-empty string, got a number"]


# ---------------------------------------------------------------------------- transfer, suggest-labels, export

@pytest.fixture
def faces_folder(tmp_path, sample):
    return write_folder(tmp_path / "faces", sample, per_class=6)


@pytest.mark.parametrize("extra,fragment", [
    (["--label-map", "angr=angry"], '--label-map: "angr" is not a class of'),
    (["--label-map", "angry"], "is not of the form target_class=model_class"),
    (["--folds", "7"], "--folds: 7 folds but a class has only 6 images"),
    (["--folds", "2", "--group-regex", r"^(P\d+)_"], "does not match this file name"),
], ids=["unknown label-map name", "malformed label map", "more folds than images", "regex misses"])
def test_transfer_bad_settings_fail_before_any_run(tmp_path, capsys, monkeypatch, tiny_model, faces_folder,
                                                   extra, fragment):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    expect_error(capsys, ["transfer", tiny_model, "--data", faces_folder, *extra], fragment)
    assert not (tmp_path / "mlflow.db").exists()  # nothing was logged for a run that could not start


def test_transfer_onto_a_tree_with_classes_it_lacks(tmp_path, capsys, monkeypatch, tiny_model, faces_folder):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    (faces_folder / "contempt").mkdir()
    cv2.imwrite(str(faces_folder / "contempt" / "S000_x.png"), np.zeros((48, 48), np.uint8))
    expect_error(capsys, ["transfer", tiny_model, "--data", faces_folder, "--folds", "2"],
                 "contempt are not leaves of the tree")


def test_suggest_labels_on_a_missing_folder(tmp_path, capsys, tiny_model):
    expect_error(capsys, ["suggest-labels", tiny_model, "--data", tmp_path / "ck"], "ck: no such file or folder")


def test_evaluate_with_a_map_to_an_unknown_model_class(capsys, tiny_model, faces_folder):
    expect_error(capsys, ["evaluate", tiny_model, "--data", faces_folder, "--label-map", "angry=rage"],
                 '"rage" is not a class of the model')


def test_export_of_an_export(tmp_path, capsys, tiny_model):
    assert main(["export", str(tiny_model), "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    capsys.readouterr()
    expect_error(capsys, ["export", tmp_path / "onnx", "--format", "tflite", "--out", tmp_path / "t"],
                 "runs exported onnx networks")
    assert not (tmp_path / "t").exists()
