"""Every writer, interrupted, leaves nothing under its final name (and an older output intact)."""

import json

import numpy as np
import pytest

from cnntree import export_model, load_model, save_model
from cnntree.files import atomic_path, write_text_atomically
from cnntree.live.rehearse import report
from cnntree.nets import runtime


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def interrupt_after(calls):
    """A stand-in writer that works ``calls`` times, then raises KeyboardInterrupt (Ctrl-C)."""
    count = {"n": 0}

    def fail(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise KeyboardInterrupt
    return fail


def test_an_interrupted_model_save_keeps_the_older_model_whole(tmp_path, tiny_model, monkeypatch):
    clf = load_model(tiny_model)
    saved = save_model(clf, tmp_path / "model")
    before = {p.name: p.stat().st_size for p in (saved / "networks").iterdir()}
    from cnntree.estimator import storage

    original = storage._write

    def second_network_fails(clf, directory, suffix, write_network, exported=None, **options):
        stop = interrupt_after(1)
        return original(clf, directory, suffix, lambda node_id, path: (stop(), write_network(node_id, path)), exported,
                        **options)

    monkeypatch.setattr(storage, "_write", second_network_fails)
    with pytest.raises(KeyboardInterrupt):
        save_model(clf, tmp_path / "model")
    with pytest.raises(KeyboardInterrupt):
        save_model(clf, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists() and leftovers(tmp_path) == []
    assert {p.name: p.stat().st_size for p in (saved / "networks").iterdir()} == before
    np.testing.assert_allclose(load_model(saved).predict_proba(np.zeros((2, 48, 48), np.uint8)),
                               load_model(tiny_model).predict_proba(np.zeros((2, 48, 48), np.uint8)))


def test_an_interrupted_export_leaves_no_directory(tmp_path, tiny_model, monkeypatch):
    real = runtime.export_network
    stop = interrupt_after(1)
    monkeypatch.setattr("cnntree.estimator.storage.export_network",
                        lambda model, fmt, path: (stop(), real(model, fmt, path)))
    with pytest.raises(KeyboardInterrupt):
        export_model(load_model(tiny_model), tmp_path / "onnx", "onnx")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_report_or_figure_leaves_nothing(tmp_path, monkeypatch):
    from cnntree.plots import draw_confusion

    rows = [{"start": 0, "end": 1, "line": "", "expected": "sad", "frames": 1, "face_share": 1.0,
             "dominant": "sad", "score": 0.9, "verdict": "match"}]
    monkeypatch.setattr("cnntree.files.Path.write_text", interrupt_after(0))
    with pytest.raises(KeyboardInterrupt):
        report(rows, tmp_path / "r.md", "t")
    monkeypatch.undo()
    monkeypatch.setattr("matplotlib.figure.Figure.savefig", interrupt_after(0))
    with pytest.raises(KeyboardInterrupt):
        draw_confusion(np.eye(2), ["a", "b"], tmp_path / "c.png")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = write_text_atomically(tmp_path / "state.json", json.dumps({"epoch": 3}))
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"epo')  # half a file, then a crash
            raise RuntimeError("disk full")
    assert json.loads(target.read_text()) == {"epoch": 3} and leftovers(tmp_path) == []
