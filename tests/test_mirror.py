"""The mirror on real FER2013 faces pasted into frames: detection, tracking, outputs, exports, rehearsal."""

import json

import cv2
import numpy as np
import pytest

from cnntree import load_model, save_model
from cnntree.errors import CnnTreeError
from cnntree.live import scenes
from cnntree.live.detect import FaceDetector, FaceTracker, crop_faces, overlap
from cnntree.live.mirror import Mirror, open_source, run_mirror
from cnntree.live.rehearse import load_script, parse_script, report, score_segments

from .helpers import ROOT, run_cli

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


@pytest.fixture(scope="module")
def found(sample):
    """Indices of sample faces the cascade finds when pasted at 144 px (the test fixtures' faces)."""
    return scenes.detectable(sample.images[:120], FaceDetector())


def _video(path, faces, frames=12, fps=10.0):
    backdrop = scenes.background()
    boxes = scenes.grid_boxes(len(faces))
    return scenes.write_video(path, (scenes.render(faces, boxes, backdrop) for _ in range(frames)), fps)


def test_the_cascade_finds_pasted_fer_faces_where_they_are(sample, found):
    assert len(found) >= 0.5 * 120  # measured: ~70% of FER2013 crops are found alone
    faces = sample.images[found[:4]]
    boxes = scenes.grid_boxes(4)
    frame = scenes.render(faces, boxes, scenes.background())
    detected = FaceDetector().detect(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    assert len(detected) == 4
    for x, y, side in boxes:  # every pasted square holds exactly one detection, mostly overlapping it
        assert sum(overlap((x, y, side, side), d) > 0.5 for d in detected) == 1
    crops = crop_faces(frame[..., 0], np.array([[x, y, s, s] for x, y, s in boxes]))
    assert crops.shape == (4, 48, 48) and crops.dtype == np.uint8
    # a crop of the pasted square is the original face again, up to resampling
    assert np.corrcoef(crops[0].ravel().astype(float), faces[0].ravel().astype(float))[0, 1] > 0.95


def test_a_blank_frame_has_no_face():
    assert FaceDetector().detect(scenes.background()[..., 0]).shape == (0, 4)


def test_tracks_keep_their_id_and_smooth_probabilities():
    tracker = FaceTracker(smoothing=0.6, max_missing=1)
    a, b = np.array([100, 100, 80, 80]), np.array([400, 100, 120, 120])
    p1, p2 = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[0.0, 1.0], [0.0, 1.0]])
    first = tracker.update(np.array([a, b]), p1)
    assert [t.id for t in first] == [1, 2] and FaceTracker.main(first).id == 2  # the largest face
    second = tracker.update(np.array([b + 4, a + 3]), p2)  # order swapped, moved a little
    assert [t.id for t in second] == [2, 1]
    np.testing.assert_allclose(second[1].probabilities, [0.6, 0.4])  # 0.6 * old + 0.4 * new
    np.testing.assert_allclose(second[0].probabilities, [0.0, 1.0])
    third = tracker.update(np.array([[10, 300, 50, 50]]), np.array([[0.5, 0.5]]))
    assert [t.id for t in third] == [3]  # no overlap with any track: a new face
    tracker.update(np.zeros((0, 4)), np.zeros((0, 2)))
    assert {t.id for t in tracker.tracks} == {3}  # 1 and 2 missed two frames > max_missing
    with pytest.raises(ValueError):
        FaceTracker(smoothing=1.0)


def test_no_smoothing_keeps_each_frames_probabilities():
    tracker = FaceTracker(smoothing=0.0)
    box = np.array([[10, 10, 60, 60]])
    tracker.update(box, np.array([[0.9, 0.1]]))
    np.testing.assert_allclose(tracker.update(box, np.array([[0.2, 0.8]]))[0].probabilities, [0.2, 0.8])


@pytest.mark.slow
def test_mirror_cli_writes_video_jsonl_and_timeline_with_matching_frames(tmp_path, tiny_model, sample, found):
    video = tmp_path / "in.mp4"
    assert _video(video, sample.images[found[:2]], frames=12, fps=10.0) == 12
    out, lines, timeline = tmp_path / "out.mp4", tmp_path / "frames.jsonl", tmp_path / "timeline.png"
    code, stdout, stderr = run_cli("mirror", tiny_model, "--source", video, "--out", out, "--jsonl", lines,
                                   "--timeline", timeline, "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["frames"] == 12 and summary["faces"] == 24 and summary["frames_with_faces"] == 12
    written = cv2.VideoCapture(str(out))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 12 and written.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(12))
    assert [r["time"] for r in records[:3]] == [0.0, 0.1, 0.2]
    assert all(len(r["faces"]) == 2 and r["main"] in {f["track"] for f in r["faces"]} for r in records)
    assert {f["track"] for r in records for f in r["faces"]} == {1, 2}  # two faces, tracked all along
    face = records[-1]["faces"][0]
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)
    assert cv2.imread(str(timeline)).shape[1] > 800
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


@pytest.mark.slow
def test_a_video_without_faces_is_still_written_whole(tmp_path, tiny_model):
    video = tmp_path / "empty_room.avi"
    _video(video, np.zeros((0, 48, 48), np.uint8), frames=7)
    out = tmp_path / "out.avi"
    code, stdout, stderr = run_cli("mirror", tiny_model, "--source", video, "--out", out)
    assert code == 0, stderr
    assert "7 frame(s), 0 face(s)" in stdout
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 7


def test_mirror_on_a_photo_writes_the_annotated_photo(tmp_path, tiny_model, sample, found):
    photo = tmp_path / "group.jpg"
    frame = scenes.render(sample.images[found[:3]], scenes.grid_boxes(3), scenes.background())
    cv2.imwrite(str(photo), frame)
    clf = load_model(tiny_model)
    run = run_mirror(Mirror(clf), open_source(str(photo)), out=tmp_path / "labelled.png")
    assert run.frames == 1 and run.faces == 3
    labelled = cv2.imread(str(tmp_path / "labelled.png"))
    assert labelled.shape == frame.shape and (labelled != frame).any()  # boxes and labels drawn


def in_process(capsys, *argv):
    """``cnntree argv`` in this process (what the console script runs): (status, stdout, stderr)."""
    from cnntree.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("make,source,message", [
    (lambda p: p.write_bytes(b""), "zero.mp4", "zero.mp4: empty file"),
    (lambda p: p.write_text("not a video\n" * 50), "text.mp4", "text.mp4: unreadable video"),
    (lambda p: p.write_text("not an image"), "face.png", "face.png: unreadable image"),
    (None, "missing.mp4", "missing.mp4: no such file"),
    (None, "97", "--source 97: no camera 97 on this machine"),
])
def test_bad_sources_give_one_line_errors(tmp_path, capsys, tiny_model, make, source, message):
    if make:
        make(tmp_path / source)
    path = source if source.isdigit() else tmp_path / source
    code, stdout, stderr = in_process(capsys, "mirror", tiny_model, "--source", path)
    assert code == 2 and message in stderr and "Traceback" not in stderr
    assert len([line for line in stderr.splitlines() if line.startswith("cnntree:")]) == 1


def test_bad_output_settings_fail_before_any_frame(tmp_path, capsys, tiny_model, sample, found):
    video = tmp_path / "in.mp4"
    _video(video, sample.images[found[:1]], frames=3)
    code, _, stderr = in_process(capsys, "mirror", tiny_model, "--source", video, "--out", tmp_path / "out.gif")
    assert code == 2 and "--out" in stderr and ".mp4" in stderr
    code, _, stderr = in_process(capsys, "mirror", tiny_model, "--source", video, "--show")
    assert code == 2 and "--show" in stderr  # the headless OpenCV has no windows
    code, _, stderr = in_process(capsys, "mirror", tiny_model, "--source", video, "--mode", "weighted")
    assert code == 2 and 'mode "weighted" does not apply to a tree' in stderr
    assert not (tmp_path / "out.gif").exists()


def test_an_interrupted_video_leaves_nothing_under_its_name(tmp_path, tiny_model, sample, found):
    video = tmp_path / "in.mp4"
    _video(video, sample.images[found[:1]], frames=10)

    class Failing(Mirror):
        def process(self, frame, index=0, seconds=0.0):
            if index == 5:
                raise KeyboardInterrupt
            return super().process(frame, index, seconds)

    with pytest.raises(KeyboardInterrupt):
        run_mirror(Failing(load_model(tiny_model)), open_source(str(video)), out=tmp_path / "out.mp4",
                   jsonl=tmp_path / "f.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_exported_classifiers_agree_with_keras(tmp_path, tiny_model, sample, fmt):
    code, stdout, stderr = run_cli("export", tiny_model, "--format", fmt, "--out", tmp_path / fmt)
    assert code == 0, stderr
    keras_clf, exported = load_model(tiny_model), load_model(tmp_path / fmt)
    assert exported.runtime == fmt and sorted(p.suffix for p in (tmp_path / fmt / "networks").iterdir()) == [f".{fmt}"] * 2
    x = sample.images[sample.splits == "PrivateTest"]
    for mode in ("soft", "hard"):
        np.testing.assert_allclose(exported.set_params(mode=mode).predict_proba(x), keras_clf.set_params(mode=mode).predict_proba(x),
                                   atol=1e-4)
    with pytest.raises(CnnTreeError, match=f"runs exported {fmt} networks"):
        save_model(exported, tmp_path / "again")


@pytest.mark.slow
def test_savedmodel_export_and_runtime_mismatch(tmp_path, tiny_model, sample, found):
    code, _, stderr = run_cli("export", tiny_model, "--format", "savedmodel", "--out", tmp_path / "sm")
    assert code == 0, stderr
    assert (tmp_path / "sm" / "networks" / "root" / "saved_model.pb").exists()
    with pytest.raises(CnnTreeError, match="a SavedModel export is for TensorFlow Serving"):
        load_model(tmp_path / "sm")
    video = tmp_path / "in.mp4"
    _video(video, sample.images[found[:1]], frames=2)
    code, _, stderr = run_cli("mirror", tiny_model, "--source", video, "--runtime", "onnx")
    assert code == 2 and "holds keras networks" in stderr and "cnntree export" in stderr


# ---------------------------------------------------------------------------- rehearsal


def test_the_example_script_parses():
    segments = load_script(ROOT / "examples" / "rehearsal_script.json", CLASSES)
    assert [(s.start, s.end, s.expected) for s in segments] == [(0, 2, "happy"), (2, 4, "surprise"), (4, 6, "sad")]


@pytest.mark.parametrize("raw,message", [
    ({"segments": []}, "segments: expected at least 1 item(s), got 0"),
    ([{"start": 0, "end": 1}], 'segments[0].expected: is required'),
    ([{"start": 2, "end": 1, "expected": "sad"}], "segments[0]: ends (1) before it starts (2)"),
    ([{"start": 0, "end": 1, "expected": "hapy"}], 'segments[0].expected: "hapy" is not a class of this model '
                                                   '(did you mean "happy"?)'),
    ([{"start": 0, "end": 2, "expected": "sad"}, {"start": 1, "end": 3, "expected": "sad"}],
     "segments[1]: starts at 1, before segments[0] ends (2)"),
    ([{"start": -1, "end": 2, "expected": "sad"}], "segments[0].start: -1 is out of range (>= 0)"),
    ([{"start": 0, "end": 2, "expected": "sad", "mood": 1}], 'segments[0].mood: unknown key "mood"'),
    ("happy", "segments: expected a list, got a string"),
])
def test_script_errors_name_the_segment(raw, message):
    with pytest.raises(CnnTreeError) as error:
        parse_script(raw, CLASSES, "s.json")
    assert str(error.value).startswith(f"s.json: {message}")


def test_script_file_errors(tmp_path):
    (tmp_path / "bad.json").write_text('{"segments": [}')
    with pytest.raises(CnnTreeError, match=r"bad.json: invalid JSON: .*line 1"):
        load_script(tmp_path / "bad.json", CLASSES)
    with pytest.raises(CnnTreeError, match="nope.json: no such script file"):
        load_script(tmp_path / "nope.json", CLASSES)


def test_segments_are_scored_on_the_main_face():
    classes = ["happy", "sad", "neutral"]
    times = np.arange(8) * 0.5  # 0 .. 3.5 s
    main = np.array([[0.7, 0.2, 0.1]] * 4 + [[0.2, 0.3, 0.5]] * 2 + [[np.nan] * 3] * 2)
    segments = parse_script([{"start": 0, "end": 2, "expected": "happy"}, {"start": 2, "end": 3, "expected": "sad"},
                             {"start": 3, "end": 4, "expected": "sad"}, {"start": 2, "end": 3, "expected": "happy"}]
                            [:3], classes)
    rows = score_segments(segments, times, main, classes)
    assert [r["verdict"] for r in rows] == ["match", "weak", "no face"]
    assert rows[0]["score"] == pytest.approx(0.7) and rows[0]["dominant"] == "happy" and rows[0]["frames"] == 4
    assert rows[1]["score"] == pytest.approx(0.3) and rows[1]["dominant"] == "neutral"
    assert rows[2]["face_share"] == 0.0 and rows[2]["score"] is None
    miss = score_segments(parse_script([{"start": 2, "end": 3, "expected": "happy"}], classes), times, main, classes)
    assert miss[0]["verdict"] == "miss" and miss[0]["score"] == pytest.approx(0.2)


@pytest.mark.slow
def test_rehearse_cli_writes_report_and_timeline(tmp_path, tiny_model):
    video = tmp_path / "rehearsal.mp4"
    import subprocess
    import sys

    subprocess.run([sys.executable, str(ROOT / "examples" / "make_rehearsal_video.py"), str(video)], check=True,
                   capture_output=True)
    out, picture = tmp_path / "report.html", tmp_path / "timeline.png"
    code, stdout, stderr = run_cli("rehearse", tiny_model, "--script", ROOT / "examples" / "rehearsal_script.json",
                                   "--source", video, "--out", out, "--timeline", picture)
    assert code == 0, stderr
    text = out.read_text()
    assert "3 segments" in text and "wonderful" in text and 'src="timeline.png"' in text
    assert cv2.imread(str(picture)) is not None
    assert len([line for line in stdout.splitlines() if "expected" in line]) == 3
    code, _, stderr = run_cli("rehearse", tiny_model, "--script", ROOT / "examples" / "rehearsal_script.json",
                              "--source", video, "--out", tmp_path / "report.pdf")
    assert code == 2 and "report.pdf: the report is written as .md or .html" in stderr


def test_report_escapes_html(tmp_path):
    rows = [{"start": 0, "end": 1, "line": "<b>hi</b>", "expected": "sad", "frames": 1, "face_share": 1.0,
             "dominant": "sad", "score": 0.9, "verdict": "match"}]
    text = report(rows, tmp_path / "r.html", "t").read_text()
    assert "&lt;b&gt;hi&lt;/b&gt;" in text and "<b>hi" not in text
