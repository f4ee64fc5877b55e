"""Hostile use of the newer commands and options: hierarchical answers (``--coverage``,
``--hierarchy``, ``--abstain``, a model's ``climbing.json``), faces found in photos, and ``serve``.
Every case: exit status 2 and one ``cnntree: error:`` line, nothing written."""

import json
import shutil
import socket

import cv2
import numpy as np
import pytest

from cnntree.pretrained import HERE

from ..helpers import MORAVCIK, ROOT
from .test_hostile import expect_error


@pytest.fixture
def face(tmp_path, sample):
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), sample.images[0])
    return path


@pytest.fixture
def small_copy(tmp_path):
    """The shipped ``small`` model as a folder of one's own, with thresholds for moravcik."""
    folder = tmp_path / "small"
    shutil.copytree(HERE / "small", folder)
    return folder


def refused_option(capsys, argv, fragment):
    """An option value argparse refuses: its usage line and one error line, exit status 2."""
    from cnntree.cli import main

    with pytest.raises(SystemExit) as stopped:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "Traceback" not in err
    assert fragment in [line for line in err.splitlines() if ": error: " in line][0]


def test_coverage_options_out_of_place(capsys, face):
    expect_error(capsys, ["predict", "--abstain", face], "--abstain goes with --coverage C")
    expect_error(capsys, ["evaluate", "small", "--hierarchy", MORAVCIK], "--hierarchy goes with --coverage C")
    for value in ("1.5", "0", "nan", "high"):
        refused_option(capsys, ["predict", "--coverage", value, face], "argument --coverage")


def test_hierarchies_that_do_not_fit(capsys, face, tmp_path):
    expect_error(capsys, ["predict", "--coverage", "0.9", "--hierarchy", tmp_path / "none.json", face],
                 "none.json: no such spec file")
    expect_error(capsys, ["predict", "--coverage", "0.9", "--hierarchy", ROOT / "trees" / "single_vgg.json", face],
                 "a single network has no hierarchy")
    expect_error(capsys, ["evaluate", "small", "--coverage", "0.9"], "has no hierarchy of its own")
    six = ROOT / "trees" / "moravcik_no_disgust.json"
    expect_error(capsys, ["predict", "--coverage", "0.9", "--hierarchy", six, "small", face],
                 "are not the model's")
    expect_error(capsys, ["predict", "--coverage", "0.7", face], "no threshold for hierarchy", "--out DIR")


def test_calibrating_answers_refuses_what_it_must(capsys, tmp_path):
    expect_error(capsys, ["calibrate", "small", "--coverage", "0.9", "--hierarchy", MORAVCIK],
                 "a shipped model is read-only")
    expect_error(capsys, ["calibrate", "small", "--coverage", "0.9", "--hierarchy", MORAVCIK, "--out",
                          tmp_path / "x", "--split", "Nope"], '--split: no split "Nope"')
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("damage", ["{not json", json.dumps({"hierarchies": {"h": {"nodes": [], "thresholds":
                                                                                  {"0.9": {"threshold": 7}}}}}),
                                    json.dumps({"hierarchies": []}), json.dumps([1, 2])])
def test_a_damaged_climbing_file_is_one_line(capsys, small_copy, face, damage):
    (small_copy / "climbing.json").write_text(damage)
    expect_error(capsys, ["predict", small_copy, face], "climbing.json: damaged", "calibrate --coverage again")


def test_a_climbing_file_naming_other_classes_is_one_line(capsys, small_copy, face):
    record = {"default": "h", "hierarchies": {"h": {"nodes": [{"id": "r", "children": ["joy", "anger"]}],
                                                    "thresholds": {"0.9": {"threshold": 0.5, "faces": 10}}}}}
    (small_copy / "climbing.json").write_text(json.dumps(record))
    expect_error(capsys, ["predict", "--coverage", "0.9", small_copy, face], "is not a class of the model")


def test_photos_that_are_not_photos(capsys, tmp_path):
    (tmp_path / "notes.jpg").write_text("hello")
    expect_error(capsys, ["predict", tmp_path / "notes.jpg"], "notes.jpg: unreadable image")
    (tmp_path / "empty.png").write_bytes(b"")
    expect_error(capsys, ["explain", tmp_path / "empty.png", "--out", tmp_path / "out"], "empty.png: empty file")
    assert not (tmp_path / "out").exists()
    cv2.imwrite(str(tmp_path / "big.png"), np.zeros((20, 20), np.uint8))
    expect_error(capsys, ["predict", "--no-detect", tmp_path / "big.png", tmp_path / "missing.png"],
                 "missing.png: no such image file")


def test_serve_where_it_cannot_listen(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        expect_error(capsys, ["serve", "small", "--port", port], f"--port {port}: cannot listen there")
    expect_error(capsys, ["serve", "small", "--host", "no.such.host.invalid"], "cannot listen there")
    refused_option(capsys, ["serve", "small", "--port", "70000"], "argument --port")
    refused_option(capsys, ["serve", "small", "--max-clients", "0"], "argument --max-clients")
    expect_error(capsys, ["serve", "runs/models/nothere"], "no such model directory")
