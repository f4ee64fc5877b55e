"""Benchmark: the mirror's frames per second with 0, 1 and 20 faces, and milliseconds per face, per runtime.

    python bench/mirror.py                      # single mini-Xception and the moravcik mini-Xception tree
    python bench/mirror.py --model runs/my_model --frames 200

It makes 640x480 test videos (FER2013 sample faces the cascade finds, pasted onto a generated
backdrop and moved a few pixels per frame), exports each classifier to ONNX and TFLite, then
times the whole per-frame loop (decode, detect, crop, classify in one batch, track, annotate; no
writing) and the classification alone. Prints a table and writes bench/mirror.json.
Targets on the project's 2-core CPU: >= 30 FPS with one face, >= 10 FPS with 20 faces,
<= 3 ms to classify one face.
"""

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnntree import CnnTreeClassifier, export_model, load_model, save_model, with_overrides  # noqa: E402
from cnntree.data import load_faces  # noqa: E402
from cnntree.live import scenes  # noqa: E402
from cnntree.live.detect import FaceDetector, FaceTracker  # noqa: E402
from cnntree.live.mirror import Mirror, open_source  # noqa: E402
from cnntree.spec import load_spec  # noqa: E402

SPECS = ["trees/single_mini_xception.json", "trees/moravcik_mini_xception.json"]


def untrained_stand_in(spec_path: str, out: Path, faces) -> Path:
    """A full-size classifier trained one epoch on the bundled sample: timing does not depend on weights."""
    if not (out / "meta.json").exists():
        train = faces.splits == "Training"
        val = faces.splits == "PublicTest"
        clf = CnnTreeClassifier(with_overrides(load_spec(ROOT / spec_path), epochs=1), work_dir=out.parent / f"{out.name}-work",
                                printer=lambda *_: None)
        clf.fit(faces.images[train], faces.labels[train], (faces.images[val], faces.labels[val]))
        save_model(clf, out)
    return out


def make_video(path: Path, faces: np.ndarray, frames: int, seed: int) -> Path:
    backdrop = scenes.background(seed=seed)
    boxes = scenes.grid_boxes(len(faces))
    rng = np.random.default_rng(seed)

    def moving():
        for _ in range(frames):  # every face drifts a few pixels, as a person in front of a camera does
            jitter = [(min(max(x + int(rng.integers(-3, 4)), 0), 640 - s), min(max(y + int(rng.integers(-3, 4)), 0), 480 - s), s)
                      for x, y, s in boxes]
            yield scenes.render(faces, jitter, backdrop)

    scenes.write_video(path, moving(), fps=25)
    return path


def frames_per_second(clf, video: Path) -> dict:
    mirror = Mirror(clf, FaceDetector(), FaceTracker())
    source = open_source(str(video))
    started, faces, frames = None, 0, 0
    for index, seconds, frame in source.frames():
        if index == 3:  # the first frames warm the runtime up
            started, faces, frames = time.perf_counter(), 0, 0
        result = mirror.process(frame, index, seconds)
        mirror.annotate(frame, result)
        faces += len(result.faces)
        frames += 1
    elapsed = time.perf_counter() - started
    return {"fps": frames / elapsed, "faces_per_frame": faces / frames}


def ms_per_face(clf, faces: np.ndarray, batch: int, repeats: int) -> float:
    x = faces[:batch]
    clf.predict_proba(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        clf.predict_proba(x)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000 / batch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", help="a trained model directory (repeatable; default: "
                        "stand-ins for " + " and ".join(SPECS) + ")")
    parser.add_argument("--frames", type=int, default=100, help="frames per test video")
    parser.add_argument("--runtimes", default="keras,onnx,tflite")
    parser.add_argument("--json", default=str(ROOT / "bench" / "mirror.json"))
    args = parser.parse_args()

    work = ROOT / "runs" / "bench" / "mirror"
    work.mkdir(parents=True, exist_ok=True)
    sample = load_faces("sample")
    found = scenes.detectable(sample.images, FaceDetector(), side=84)
    models = [Path(m) for m in args.model] if args.model else \
        [untrained_stand_in(s, work / Path(s).stem, sample) for s in SPECS]
    videos = {n: make_video(work / f"faces{n}.mp4", sample.images[found[:n]], args.frames, seed=n) for n in (0, 1, 20)}
    rows = []
    for model in models:
        keras_clf = load_model(model)
        for runtime in args.runtimes.split(","):
            if runtime == "keras":
                clf = keras_clf
            else:
                clf = load_model(export_model(keras_clf, Path(tempfile.mkdtemp(dir=work)) / runtime, runtime))
            row = {"model": model.name, "networks": len(clf.spec_.nodes), "runtime": runtime,
                   "ms_per_face_1": ms_per_face(clf, sample.images, 1, 200),
                   "ms_per_face_20": ms_per_face(clf, sample.images, 20, 50)}
            for n, video in videos.items():
                measured = frames_per_second(clf, video)
                row[f"fps_{n}"], row[f"faces_seen_{n}"] = measured["fps"], measured["faces_per_frame"]
            rows.append(row)
            print(f"{row['model']:24s} {runtime:7s} 1 face {row['ms_per_face_1']:6.2f} ms | FPS 0: {row['fps_0']:6.1f}"
                  f"  1: {row['fps_1']:6.1f}  20: {row['fps_20']:5.1f} ({row['faces_seen_20']:.1f} faces seen)", flush=True)

    print("\n| model | networks | runtime | ms/face (1) | ms/face (batch 20) | FPS 0 faces | FPS 1 face | FPS 20 faces |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['networks']} | {r['runtime']} | {r['ms_per_face_1']:.2f} | {r['ms_per_face_20']:.2f} | "
              f"{r['fps_0']:.1f} | {r['fps_1']:.1f} | {r['fps_20']:.1f} ({r['faces_seen_20']:.1f} found) |")
    result = {"machine": f"{platform.machine()} {__import__('os').cpu_count()} cores", "frames": args.frames,
              "video": "640x480, 25 fps", "command": "python " + " ".join(sys.argv), "rows": rows}
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
