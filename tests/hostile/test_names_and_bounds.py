"""Hostile use: names that become paths, folders cnntree does not own, unbounded and
special inputs, damaged model folders, option bounds, stores that are not stores.

Every case asserts the exit status, one ``cnntree: error:`` line (or the exact success), and
that nothing already written changed (a ``sentinel`` folder beside or inside the target).
"""

import gzip
import json
import os
import shutil
import socket
import struct
import threading
import time
import zlib

import cv2
import numpy as np
import pytest

from cnntree.cli import main

from ..helpers import MORAVCIK, ROOT, write_csv, write_folder
from .test_hostile import expect_error, spec_file


def sentinel(folder):
    """A folder with a file in it that must survive the case untouched."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "precious.txt").write_text("keep me")
    return folder


def untouched(folder):
    return (folder / "precious.txt").read_text() == "keep me"


def write_spec(path, raw):
    path.write_text(json.dumps(raw))
    return path


# ---------------------------------------------------------------------------- names that become paths

UNSAFE_NAMES = {
    "parent folders": "../../../somewhere",
    "an absolute path": "/tmp/cnntree-victim",
    "dot-dot": "..",
    "a single dot": ".",
    "a slash inside": "a/b",
    "a backslash": "a\\b",
    "an emoji": "moravcik😀",
    "a space": "my tree",
    "a leading dash": "-rf",
    "too long": "x" * 65,
}


@pytest.mark.parametrize("name", UNSAFE_NAMES.values(), ids=list(UNSAFE_NAMES))
def test_a_spec_name_that_would_be_a_path_is_refused(tmp_path, capsys, name):
    path = spec_file(tmp_path, lambda r: r.update(name=name))
    expect_error(capsys, ["validate", path], "spec.json: name:", "is not a safe name")


@pytest.mark.parametrize("node_id", ["../../../../tmp/x", "NN😀", "/etc", "NN 1", "..", "a..b"],
                         ids=["parent folders", "emoji", "absolute", "space", "dot-dot", "double dot inside"])
def test_a_node_id_that_would_be_a_file_name_is_refused(tmp_path, capsys, node_id):
    def change(raw):
        raw["nodes"][3]["id"] = node_id
        raw["nodes"][1]["children"][1] = node_id

    expect_error(capsys, ["validate", spec_file(tmp_path, change)], "nodes[3].id:", "is not a safe name")


def test_a_member_id_that_would_be_a_file_name_is_refused(tmp_path, capsys):
    raw = {"name": "v", "kind": "voting", "members": [{"id": "a"}, {"id": "../b"}]}
    expect_error(capsys, ["validate", write_spec(tmp_path / "v.json", raw)], "members[1].id:", "is not a safe name")


def test_training_a_spec_named_dot_dot_deletes_nothing(tmp_path, capsys):
    runs = sentinel(tmp_path / "runs")
    path = spec_file(tmp_path, lambda r: r.update(name=".."))
    expect_error(capsys, ["train", path, "--quick"], "name:", "is not a safe name")
    assert untouched(runs)


# ---------------------------------------------------------------------------- a class used twice, structure limits

@pytest.mark.parametrize("change,fragment", [
    (lambda r: r["nodes"][2]["children"].__setitem__(2, ["neutral", "happy"]), 'class "happy" is placed twice'),
    (lambda r: r["nodes"][2]["children"].__setitem__(2, ["neutral", "neutral"]), '"neutral" appears twice'),
    (lambda r: r["nodes"][3]["children"].__setitem__(0, ["disgust", "fear"]), 'class "fear" is placed twice'),
], ids=["list group and another branch", "twice in one list", "a list group and the root"])
def test_a_class_placed_twice_is_refused(tmp_path, capsys, change, fragment):
    expect_error(capsys, ["validate", spec_file(tmp_path, change)], fragment)


def chain(n):
    nodes = [{"id": f"N{i}", "children": [f"c{i}", f"N{i + 1}"]} for i in range(n - 1)]
    nodes.append({"id": f"N{n - 1}", "children": [f"c{n - 1}", f"c{n}"]})
    return {"name": "deep", "classes": [f"c{i}" for i in range(n + 1)], "nodes": nodes}


def test_a_deep_chain_within_the_limits_validates_and_shows(tmp_path, capsys):
    started = time.perf_counter()
    assert main(["show", str(write_spec(tmp_path / "deep.json", chain(250)))]) == 0
    out = capsys.readouterr().out
    assert "250 networks" not in out and out.count("N") >= 250
    assert time.perf_counter() - started < 30  # the cubic walk took 38 s at 400 nodes; this is linear


@pytest.mark.parametrize("raw,fragment", [
    (chain(1200), "expected at most 256 item(s)"),
    ({"name": "w", "classes": [f"c{i}" for i in range(300)], "kind": "single"}, "classes: expected at most 256"),
], ids=["1,200-node chain", "300 classes"])
def test_structures_beyond_the_limits_are_refused(tmp_path, capsys, raw, fragment):
    expect_error(capsys, ["validate", write_spec(tmp_path / "big.json", raw)], fragment)


@pytest.mark.parametrize("change,fragment", [
    (lambda r: r.update(description="\x1b[2J\x1b[31mowned"), "holds control characters"),
    (lambda r: r.update(classes=["angry", "disgust", "fear", "happy", "sad", "surprise", "neu\x07tral"]),
     "holds control characters"),
    (lambda r: r.update(description="x" * 20000), "a string of 20000 characters"),
], ids=["escape sequences in a description", "a bell in a class name", "a 20,000-character description"])
def test_strings_that_could_drive_a_terminal_are_refused(tmp_path, capsys, change, fragment):
    line = expect_error(capsys, ["validate", spec_file(tmp_path, change)], fragment)
    assert "\x1b" not in line and "\x07" not in line


# ---------------------------------------------------------------------------- JSON that is not a sane spec

@pytest.mark.parametrize("text,fragment", [
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ('{"name": "x", "a": ' + "[" * 70 + "]" * 70 + "}", "nested deeper than 64 levels"),
    ('{"name": ' + "9" * 5000 + "}", "invalid JSON"),
    ('{"name": "x", "defaults": {"train": {"epochs": NaN}}}', "NaN is not a JSON number"),
    ('{"name": "x", "defaults": {"train": {"epochs": Infinity}}}', "Infinity is not a JSON number"),
    ('{"name": "x", "defaults": {"train": {"lr": -Infinity}}}', "-Infinity is not a JSON number"),
    ('{"name": "x", "kind": "single", "defaults": {"train": {"epochs": 1e309}}}', "expected a finite number"),
    ('"just a string"', "a spec is a JSON object"),
    ("null", "a spec is a JSON object"),
    ("42", "a spec is a JSON object"),
    ('{"name": "x", "kind": "voting", "members": [{"id": "a"}, {"id": "a"}]}', '"a" is already the id'),
], ids=["100,000 levels", "70 levels", "a 5,000-digit integer", "NaN", "Infinity", "-Infinity", "1e309",
        "a JSON string", "null", "a number", "duplicate member ids"])
def test_json_that_is_not_a_sane_spec(tmp_path, capsys, text, fragment):
    (tmp_path / "bad.json").write_text(text)
    expect_error(capsys, ["validate", tmp_path / "bad.json"], "bad.json", fragment)


def test_a_byte_order_mark_is_accepted(tmp_path, capsys):
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + MORAVCIK.read_bytes())
    assert main(["validate", str(tmp_path / "bom.json")]) == 0
    assert "ok (tree \"moravcik\"" in capsys.readouterr().out


def test_a_huge_spec_is_refused_without_reading_it_whole(tmp_path, capsys):
    (tmp_path / "huge.json").write_text('{"name": "x", "description": "' + "x" * (2 << 20) + '"}')
    expect_error(capsys, ["validate", tmp_path / "huge.json"], "huge.json", "more than the 1.0 MiB a spec file may have")


# ---------------------------------------------------------------------------- special files

@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def test_a_fifo_as_spec_is_refused_at_once(capsys, fifo):
    expect_error(capsys, ["validate", fifo], "pipe: not a regular file")


def test_dev_zero_as_spec_is_refused(capsys):
    expect_error(capsys, ["validate", "/dev/zero"], "/dev/zero: not a regular file")


def test_a_fifo_named_csv_is_refused_at_once(tmp_path, capsys):
    os.mkfifo(tmp_path / "faces.csv")
    expect_error(capsys, ["data", MORAVCIK, "--data", tmp_path / "faces.csv"], "faces.csv: not a regular file")


def test_dev_zero_behind_a_csv_name_is_refused(tmp_path, capsys):
    os.symlink("/dev/zero", tmp_path / "zero.csv.gz")
    expect_error(capsys, ["data", MORAVCIK, "--data", tmp_path / "zero.csv.gz"], "zero.csv.gz: not a regular file")


def test_a_fifo_among_the_images_is_refused(tmp_path, capsys, sample):
    root = write_folder(tmp_path / "faces", sample, per_class=3)
    os.mkfifo(root / "happy" / "stuck.png")
    expect_error(capsys, ["data", MORAVCIK, "--data", root], "stuck.png: not a regular file")


def test_a_fifo_as_a_face_to_predict(capsys, fifo, tiny_model):
    expect_error(capsys, ["predict", tiny_model, fifo], "pipe: not a regular file")


def test_a_folder_as_a_face_to_predict(tmp_path, capsys, tiny_model):
    expect_error(capsys, ["predict", tiny_model, tmp_path], "is a folder")


def test_a_fifo_as_the_mirror_source(capsys, tmp_path, tiny_model):
    os.mkfifo(tmp_path / "cam.mp4")
    expect_error(capsys, ["mirror", tiny_model, "--source", tmp_path / "cam.mp4"], "cam.mp4: not a regular file")


# ---------------------------------------------------------------------------- data files

def _rows(sample, n=8):
    return [(int(sample.labels[i]), sample.images[i], str(sample.splits[i])) for i in range(n)]


def test_a_csv_with_crlf_line_ends_loads(tmp_path, capsys, sample):
    path = write_csv(tmp_path / "crlf.csv", _rows(sample, 1750))
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert main(["data", str(MORAVCIK), "--data", str(path), "--json"]) == 0
    assert sum(json.loads(capsys.readouterr().out)["splits"].values()) == 1750


def test_a_row_with_an_extra_column_names_its_line(tmp_path, capsys, sample):
    path = write_csv(tmp_path / "extra.csv", _rows(sample))
    lines = path.read_text().splitlines()
    lines[4] += ",surplus"
    path.write_text("\n".join(lines) + "\n")
    expect_error(capsys, ["data", MORAVCIK, "--data", path], "extra.csv: line 5: expected 3 comma-separated fields")


def test_a_csv_with_a_header_only(tmp_path, capsys):
    (tmp_path / "head.csv").write_text("emotion,pixels,Usage\n")
    expect_error(capsys, ["data", MORAVCIK, "--data", tmp_path / "head.csv"], "head.csv: no usable rows")


def test_escape_sequences_in_a_csv_header_are_not_printed_raw(tmp_path, capsys):
    (tmp_path / "esc.csv").write_text("emotion,\x1b]0;owned\x07\x1b[2Jpics,Usage\n0,1 2,Training\n")
    line = expect_error(capsys, ["data", MORAVCIK, "--data", tmp_path / "esc.csv"], 'missing column "pixels"')
    assert "\x1b" not in line and "\x07" not in line and "\\x1b" in line


def test_a_gzip_bomb_is_refused_past_the_bound(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("cnntree.data.readers.MAX_DATA_BYTES", 1 << 20)
    with gzip.open(tmp_path / "bomb.csv.gz", "wb") as f:
        f.write(b"emotion,pixels,Usage\n" + b"0" * (8 << 20))
    assert (tmp_path / "bomb.csv.gz").stat().st_size < 100_000
    expect_error(capsys, ["data", MORAVCIK, "--data", tmp_path / "bomb.csv.gz"], "bomb.csv.gz: more than 1.0 MiB of "
                 "decompressed data")


def test_a_damaged_cache_is_rebuilt(tmp_path, capsys, sample):
    from cnntree.data import cache_dir, load_faces

    path = write_csv(tmp_path / "c.csv", _rows(sample, 40))
    first = load_faces(path)
    for cached in cache_dir().glob("c.csv-*.npz"):
        cached.write_bytes(cached.read_bytes()[:300])  # truncated, as by a full disk
    again = load_faces(path)
    np.testing.assert_array_equal(first.images, again.images)


def _png_declaring(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose header then claims another size (the CRC recomputed)."""
    ok, encoded = cv2.imencode(".png", np.zeros((1, 1), np.uint8))
    data = bytearray(encoded.tobytes())
    ihdr = data[12:29]
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def test_an_image_declaring_20000_by_20000_pixels_is_refused_before_decoding(tmp_path, capsys, tiny_model):
    (tmp_path / "big.png").write_bytes(_png_declaring(20000, 20000))
    expect_error(capsys, ["predict", tiny_model, tmp_path / "big.png"], "big.png: the image declares 400,000,000 pixels")


@pytest.mark.parametrize("name,content,fragment", [
    ("zero.png", b"", "zero.png: empty file"),
    ("half.png", None, "half.png: unreadable image"),
], ids=["zero bytes", "a truncated PNG"])
def test_broken_image_files_in_a_folder(tmp_path, capsys, sample, name, content, fragment):
    root = write_folder(tmp_path / "faces", sample, per_class=3)
    if content is None:
        ok, encoded = cv2.imencode(".png", sample.images[0])
        content = encoded.tobytes()[:40]
    (root / "sad" / name).write_bytes(content)
    expect_error(capsys, ["data", MORAVCIK, "--data", root], fragment)


def test_cmyk_and_16_bit_images_are_read_as_grey_faces(tmp_path, capsys, sample):
    from PIL import Image

    from cnntree.data import read_face

    face = sample.images[0]
    Image.fromarray(face).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    cv2.imwrite(str(tmp_path / "deep.png"), face.astype(np.uint16) * 257)
    for name in ("cmyk.jpg", "deep.png"):
        image, resized = read_face(tmp_path / name)
        assert image.shape == (48, 48) and image.dtype == np.uint8 and not resized
        assert np.abs(image.astype(int) - face).mean() < 12, name


def test_a_resized_image_is_a_note_not_a_skipped_input(tmp_path, capsys, sample):
    root = tmp_path / "faces"
    for split in ("Training", "PublicTest", "PrivateTest"):
        write_folder(root, sample, per_class=10, split=split)
    cv2.imwrite(str(root / "Training" / "happy" / "big.png"), cv2.resize(sample.images[0], (96, 96)))
    assert main(["data", str(MORAVCIK), "--data", str(root), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["skipped"] == 0 and report["resized"] == 1
    assert "skipped" not in captured.err and "1 image(s) were not 48x48" in captured.err


# ---------------------------------------------------------------------------- regexes

@pytest.mark.parametrize("regex", [r"(a+)+$", r"(\w+\s?)*$", r"(x|xx)*y", r"((ab)*)*c"],
                         ids=["nested plus", "nested star", "overlapping alternation", "nested groups"])
def test_a_catastrophic_group_regex_is_refused_at_once(tmp_path, capsys, monkeypatch, tiny_model, sample, regex):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    folder = write_folder(tmp_path / "faces", sample, per_class=6)
    started = time.perf_counter()
    expect_error(capsys, ["transfer", tiny_model, "--data", folder, "--folds", "2", "--group-regex", regex],
                 "group regex", "exponential time")
    assert time.perf_counter() - started < 20
    assert not (tmp_path / "mlflow.db").exists()


def test_a_catastrophic_regex_in_a_spec(tmp_path, capsys, sample):
    raw = {"name": "k", "kind": "single", "data": {"path": str(write_folder(tmp_path / "f", sample, per_class=6)),
                                                   "split": {"scheme": "kfold", "folds": 2,
                                                             "group_regex": "^(S(\\d+)*)*_"}}}
    expect_error(capsys, ["data", write_spec(tmp_path / "k.json", raw)], "group regex", "exponential time")


# ---------------------------------------------------------------------------- option bounds

@pytest.mark.parametrize("argv,fragment", [
    (["train", MORAVCIK, "--epochs", "99999999999"], "--epochs: 99999999999 is out of range (<= 10000)"),
    (["train", MORAVCIK, "--seed", "-1"], "--seed: -1 is out of range"),
    (["train", MORAVCIK, "--seed", str(2**31)], "is out of range (<= 2147483647)"),
    (["train", MORAVCIK, "--workers", "100000"], "--workers: 100000 is out of range"),
    (["train", MORAVCIK, "--jobs", "1000"], "--jobs: 1000 is out of range"),
    (["train", MORAVCIK, "--epochs", "2.5"], "--epochs: expected an integer"),
    (["transfer", "M", "--data", "D", "--folds", "1000"], "--folds: 1000 is out of range"),
    (["transfer", "M", "--data", "D", "--folds", "1"], "--folds: 1 is out of range (>= 2)"),
    (["compare-trees", MORAVCIK, "--seeds", "0"], "--seeds: 0 is out of range"),
    (["mirror", "M", "--source", "0", "--detect-width", "0"], "--detect-width: 0 is out of range"),
    (["mirror", "M", "--source", "0", "--max-frames", "-5"], "--max-frames: -5 is out of range"),
    (["augment", MORAVCIK, "--node", "NN1", "--out", "x.png", "--rows", "1000"], "--rows: 1000 is out of range"),
    (["suggest", "M", "--out", "x.json", "--max-children", "1"], "--max-children: 1 is out of range"),
    (["mirror", "M", "--source", "0", "--smoothing", "nan"], "--smoothing"),
], ids=["epochs beyond the spec's cap", "negative seed", "seed beyond 2^31", "100,000 workers", "1,000 jobs",
        "fractional epochs", "1,000 folds", "one fold", "zero seeds", "zero detection width", "negative frames", "1,000 rows",
        "one child", "NaN smoothing"])
def test_every_option_has_the_specs_bounds(capsys, argv, fragment):
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and fragment in err and "Traceback" not in err


# ---------------------------------------------------------------------------- outputs cnntree does not own

@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    return tmp_path


def test_train_out_into_a_folder_it_did_not_write(tmp_path, capsys, store):
    target = sentinel(tmp_path / "mine")
    expect_error(capsys, ["train", MORAVCIK, "--quick", "--out", target], "--out", "is not a cnntree model or export "
                 "folder")
    assert untouched(target) and not (tmp_path / "mlflow.db").exists()  # refused before any run


def test_train_out_dot_is_refused(tmp_path, capsys, store, monkeypatch):
    monkeypatch.chdir(sentinel(tmp_path / "here"))
    expect_error(capsys, ["train", MORAVCIK, "--quick", "--out", "."], "--out .", "is the current folder")
    assert untouched(tmp_path / "here")


def test_train_out_onto_a_file(tmp_path, capsys, store):
    (tmp_path / "file").write_text("keep")
    expect_error(capsys, ["train", MORAVCIK, "--quick", "--out", tmp_path / "file"], "exists and is not a folder")
    assert (tmp_path / "file").read_text() == "keep"


def test_train_work_dir_that_is_not_a_work_folder(tmp_path, capsys, store):
    target = sentinel(tmp_path / "work")
    expect_error(capsys, ["train", MORAVCIK, "--quick", "--work-dir", target], "not a cnntree work folder")
    assert untouched(target)


@pytest.mark.parametrize("where", ["a folder of mine", "the current folder", "a parent folder"])
def test_export_never_replaces_what_it_did_not_write(tmp_path, capsys, monkeypatch, tiny_model, where):
    mine = sentinel(tmp_path / "mine")
    monkeypatch.chdir(mine if where != "a parent folder" else sentinel(mine / "inner"))
    out = {"a folder of mine": mine, "the current folder": ".", "a parent folder": ".."}[where]
    expect_error(capsys, ["export", tiny_model, "--format", "onnx", "--out", out], "--out")
    assert untouched(mine)


def test_export_replaces_its_own_export(tmp_path, capsys, tiny_model):
    for _ in range(2):
        assert main(["export", str(tiny_model), "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == [".cnntree", "meta.json", "networks", "spec.json"]


def test_transfer_out_into_a_foreign_folder_fails_before_any_run(tmp_path, capsys, store, tiny_model, sample):
    target = sentinel(tmp_path / "mine")
    folder = write_folder(tmp_path / "faces", sample, per_class=6)
    expect_error(capsys, ["transfer", tiny_model, "--data", folder, "--folds", "2", "--out", target], "--out")
    assert untouched(target) and not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("argv_of,fragment", [
    (lambda m, f: ["mirror", m, "--source", "0", "--out", f / "x.mp4"], "is a file, not a folder"),
    (lambda m, f: ["show", MORAVCIK, "--png", f / "t.png"], "is a file, not a folder"),
    (lambda m, f: ["suggest", m, "--out", f / "s.json"], "is a file, not a folder"),
    (lambda m, f: ["augment", MORAVCIK, "--node", "NN1", "--out", f / "a.png"], "is a file, not a folder"),
    (lambda m, f: ["rehearse", m, "--script", ROOT / "examples" / "rehearsal_script.json", "--source", "0",
                   "--out", f / "r.md"], "is a file, not a folder"),
], ids=["mirror --out", "show --png", "suggest --out", "augment --out", "rehearse --out"])
def test_an_output_under_a_file_fails_before_any_work(tmp_path, capsys, tiny_model, argv_of, fragment):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder must be")
    argv = argv_of(tiny_model, blocker)
    if argv[0] == "mirror":  # the source is opened first: give it a real one
        cv2.imwrite(str(tmp_path / "p.png"), np.zeros((64, 64, 3), np.uint8))
        argv[3] = tmp_path / "p.png"
        argv[5] = blocker / "x.png"
    expect_error(capsys, argv, fragment)


@pytest.mark.parametrize("option", ["--timeline", "--jsonl"])
def test_a_mirror_output_that_is_a_folder_fails_before_the_model_loads(tmp_path, capsys, option):
    cv2.imwrite(str(tmp_path / "p.png"), np.zeros((64, 64, 3), np.uint8))
    (tmp_path / "taken").mkdir()
    expect_error(capsys, ["mirror", tmp_path / "no-model", "--source", tmp_path / "p.png", option, tmp_path / "taken"],
                 f"{option} {tmp_path / 'taken'}: is a folder")


# ---------------------------------------------------------------------------- damaged model folders

@pytest.fixture
def model_copy(tmp_path, tiny_model):
    return shutil.copytree(tiny_model, tmp_path / "m")


def _edit_meta(folder, change):
    meta = json.loads((folder / "meta.json").read_text())
    change(meta)
    (folder / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("change,fragment", [
    (lambda m: m["networks"][0].update(file="../../outside.keras"), "lies outside the model directory"),
    (lambda m: m["networks"][0].update(file="/etc/passwd"), "lies outside the model directory"),
    (lambda m: m["networks"][0].update(id=7), "damaged model directory (meta.json.networks[0].id: expected a "
                                              "non-empty string"),
    (lambda m: m["networks"][0].update(id="../../x"), "is not a safe name"),
    (lambda m: m["networks"][0].update(priors="garbage"), "priors: expected an object"),
    (lambda m: m["networks"][0].update(priors={"train": [0.5, "x"], "true": [0.5, 0.5]}), "priors.train[1]"),
    (lambda m: m["networks"][0].update(priors={"train": [0.2, 0.3, 0.5], "true": [0.5, 0.5]}),
     "priors.train: 3 values for 2 groups"),
    (lambda m: m["networks"][0].update(priors={"train": [0.0, 1.0], "true": [0.5, 0.5]}), "out of range (> 0)"),
    (lambda m: m["networks"][0].update(groups=[["happy"], ["sad"]]), "differ from the spec's"),
    (lambda m: m["networks"][0].update(file="networks/root.pkl"), "not a network cnntree can run"),
    (lambda m: m.update(networks="all of them"), "networks: expected a list"),
    (lambda m: m["networks"].pop(), "lists networks ['root'], the spec has ['rest', 'root']"),
], ids=["a network file in a parent folder", "an absolute network file", "an integer id", "an id that is a path",
        "garbage priors", "a text prior", "priors of the wrong length", "a zero prior", "groups of another tree",
        "a pickle", "networks not a list", "a network missing"])
def test_a_damaged_meta_json(capsys, model_copy, change, fragment):
    _edit_meta(model_copy, change)
    expect_error(capsys, ["evaluate", model_copy], fragment)


def test_a_network_file_that_is_a_symlink_out_of_the_folder(tmp_path, capsys, model_copy):
    outside = shutil.copy(model_copy / "networks" / "root.keras", tmp_path / "elsewhere.keras")
    (model_copy / "networks" / "root.keras").unlink()
    os.symlink(outside, model_copy / "networks" / "root.keras")
    expect_error(capsys, ["evaluate", model_copy], "lies outside the model directory")


def test_swapped_network_files(capsys, model_copy):
    networks = model_copy / "networks"
    os.replace(networks / "root.keras", networks / "tmp.keras")
    os.replace(networks / "rest.keras", networks / "root.keras")
    os.replace(networks / "tmp.keras", networks / "rest.keras")
    expect_error(capsys, ["evaluate", model_copy], "root.keras: a network with 6 outputs where root has 2 groups")


def test_a_meta_json_that_is_a_fifo(capsys, model_copy):
    (model_copy / "meta.json").unlink()
    os.mkfifo(model_copy / "meta.json")
    expect_error(capsys, ["evaluate", model_copy], "meta.json: not a regular file")


def test_a_save_killed_between_its_two_renames_is_recovered(tmp_path, tiny_model, monkeypatch):
    """Where the filesystem cannot exchange two folders atomically, the old model is set aside
    first; a kill right then leaves it aside, and the next load puts it back."""
    from cnntree import files, load_model, save_model

    clf = load_model(tiny_model)
    target = save_model(clf, tmp_path / "model")
    monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    real_replace, calls = os.replace, []

    def killed_on_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the kill, between the renames
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", killed_on_second)
    with pytest.raises(KeyboardInterrupt):
        save_model(clf, target)
    monkeypatch.setattr(files.os, "replace", real_replace)
    assert not target.exists()
    faces = np.zeros((2, 48, 48), np.uint8)
    np.testing.assert_allclose(load_model(target).predict_proba(faces), clf.predict_proba(faces), atol=1e-6)
    assert target.is_dir()


# ---------------------------------------------------------------------------- stores that are not stores

def test_a_sqlite_store_that_is_not_a_database(tmp_path, capsys, monkeypatch):
    (tmp_path / "notes.db").write_text("my notes, not a database\n" * 10)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/notes.db")
    expect_error(capsys, ["compare"], "notes.db is not an SQLite database")
    assert (tmp_path / "notes.db").read_text().startswith("my notes")


def test_a_sqlite_store_that_is_a_folder(tmp_path, capsys, monkeypatch):
    (tmp_path / "store.db").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/store.db")
    expect_error(capsys, ["compare"], "store.db is a folder, not an SQLite database file")


def test_compare_against_a_server_that_never_answers(capsys, monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)  # accepts connections, never answers
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setattr("cnntree.tracking.store.SERVER_TIMEOUT", 1.0)
    done = threading.Event()
    try:
        started = time.perf_counter()
        expect_error(capsys, ["compare"], "unreachable", "MLFLOW_TRACKING_URI")
        assert time.perf_counter() - started < 30
    finally:
        done.set()
        server.close()
