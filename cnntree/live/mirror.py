"""The emotion mirror: every face of a photo, a video or a webcam stream labelled, frame by frame.

``Mirror.process`` is one frame: detect faces, classify them all in one batch, continue their
tracks (smoothed probabilities). ``run_mirror`` drives a source through it and writes what was
asked for: the annotated image or video, one JSON line per frame, and the main face's timeline.
Every output is written under a temporary name and renamed only when complete.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..data import IMAGE_SUFFIXES
from ..errors import CnnTreeError
from ..files import atomic_path, check_regular_input, write_atomically
from .detect import FaceDetector, FaceTracker, Track, crop_faces

VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}
WEBCAM_FPS = 30.0


@dataclass
class FrameResult:
    """One frame's tracked faces and its main face."""

    index: int
    time: float  # seconds from the start of the source
    faces: list[Track]
    main: Track | None = None
    heat: np.ndarray | None = None  # the main face's class heat map (48x48, 0-1), with --explain

    def record(self, classes) -> dict:
        """The frame as one JSON-ready line."""
        return {"frame": self.index, "time": round(self.time, 4), "main": self.main.id if self.main else None,
                "faces": [{"track": t.id, "box": [int(v) for v in t.box], "label": classes[int(t.probabilities.argmax())],
                           "probabilities": {c: round(float(p), 4) for c, p in zip(classes, t.probabilities)}}
                          for t in self.faces]}


class Mirror:
    """Faces found, classified in one batch per frame and tracked. ``classifier`` is any cnntree
    classifier (single network, tree or ensemble, on any runtime); ``mode`` its combining mode;
    ``explain`` (gradcam or saliency, Keras networks only) adds the main face's heat map."""

    def __init__(self, classifier, detector: FaceDetector | None = None, tracker: FaceTracker | None = None,
                 mode: str | None = None, explain: str | None = None, answers=None):
        self.classifier = classifier
        self.answers = answers  # compose.answers.NodeAnswers: a face's label is a node (--coverage)
        self.classes = list(classifier.spec_.classes)
        self.detector = detector or FaceDetector()
        self.tracker = tracker or FaceTracker()
        self.mode = mode
        self.explain = explain
        if explain:
            classifier.keras_models()  # exported networks give no gradients: fail before any frame

    def process(self, frame: np.ndarray, index: int = 0, seconds: float = 0.0) -> FrameResult:
        """One frame: detect, classify every face in one batch, continue the tracks."""
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        boxes = self.detector.detect(grey)
        if len(boxes):
            outputs = self.classifier.network_outputs(crop_faces(grey, boxes))
            probabilities = self.classifier.combiner(self.mode).combine(outputs)
        else:
            probabilities = np.zeros((0, len(self.classes)))
        faces = self.tracker.update(boxes, probabilities)
        result = FrameResult(index, seconds, faces, FaceTracker.main(faces))
        if self.explain and result.main is not None:
            from ..evaluation.explain import explain

            label = [int(result.main.probabilities.argmax())]  # the smoothed label shown
            result.heat = explain(self.classifier, crop_faces(grey, [result.main.box]), label, self.explain,
                                  self.mode)[0].heat
        return result

    def label(self, probabilities: np.ndarray) -> tuple[str, float]:
        """What a face is called: its class, or with ``answers`` the node of the hierarchy that is
        sure enough, with its probability."""
        if self.answers is not None:
            return self.answers(probabilities)
        k = int(probabilities.argmax())
        return self.classes[k], float(probabilities[k])

    def annotate(self, frame: np.ndarray, result: FrameResult) -> np.ndarray:
        """A copy of the frame with each face's box, label and probability (the main face in green)."""
        out = frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if result.heat is not None:
            _blend_heat(out, result.main.box, result.heat)
        scale = max(0.4, out.shape[1] / 1280)
        for track in result.faces:
            x, y, w, h = (int(v) for v in track.box)
            colour = (60, 200, 60) if track is result.main else (40, 170, 250)
            label, probability = self.label(track.probabilities)
            text = f"{label} {probability:.2f}"
            cv2.rectangle(out, (x, y), (x + w, y + h), colour, 2)
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            top = max(0, y - th - base - 4)
            cv2.rectangle(out, (x, top), (x + tw + 4, top + th + base + 4), colour, -1)
            cv2.putText(out, text, (x + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
        return out


def _blend_heat(image: np.ndarray, box, heat: np.ndarray, alpha: float = 0.45) -> None:
    """Overlay a heat map (jet colours) on the box it explains, in place; clipped to the image."""
    x, y, w, h = (int(v) for v in box)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, image.shape[1]), min(y + h, image.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    colours = cv2.applyColorMap(cv2.resize((heat * 255).astype(np.uint8), (w, h)), cv2.COLORMAP_JET)
    patch = image[y0:y1, x0:x1]
    image[y0:y1, x0:x1] = cv2.addWeighted(patch, 1 - alpha, colours[y0 - y:y1 - y, x0 - x:x1 - x], alpha, 0)


# ---------------------------------------------------------------------------- sources


def _quiet_opencv() -> None:
    """OpenCV's own warnings (a missing camera, a codec probe) would read as tracebacks to users."""
    with contextlib.suppress(AttributeError):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


@dataclass
class Source:
    """Frames from a camera, a video file or one image; ``fps`` is the rate to write and time them at."""

    name: str
    kind: str  # "camera", "video" or "image"
    fps: float
    frame_count: int | None  # None for a camera
    capture: object = field(default=None, repr=False)
    image: np.ndarray | None = field(default=None, repr=False)

    def frames(self):
        """Yield (index, seconds, frame)."""
        if self.kind == "image":
            yield 0, 0.0, self.image
            return
        started, index = time.perf_counter(), 0
        try:
            while True:
                ok, frame = self.capture.read()
                if not ok or frame is None:
                    return
                seconds = time.perf_counter() - started if self.kind == "camera" else index / self.fps
                yield index, seconds, frame
                index += 1
        finally:
            self.capture.release()


def open_source(source: str) -> Source:
    """``webcam`` (camera 0), a camera index, a video file or an image file; one-line errors otherwise."""
    _quiet_opencv()
    if source == "webcam" or source.isdigit():
        index = 0 if source == "webcam" else int(source)
        capture = cv2.VideoCapture(index)
        if not capture.isOpened():
            capture.release()
            raise CnnTreeError(f"--source {source}: no camera {index} on this machine (is one connected and free?)")
        fps = capture.get(cv2.CAP_PROP_FPS) or WEBCAM_FPS
        return Source(f"camera {index}", "camera", fps if 1 <= fps <= 240 else WEBCAM_FPS, None, capture)
    path = Path(source)
    if not path.exists():
        raise CnnTreeError(f"{path}: no such file (--source takes webcam, a camera index, a video or an image)")
    if path.is_dir():
        raise CnnTreeError(f"{path}: is a folder; --source takes webcam, a camera index, a video or an image")
    check_regular_input(path, "video or image file")
    if path.stat().st_size == 0:
        raise CnnTreeError(f"{path}: empty file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise CnnTreeError(f"{path}: unreadable image")
        return Source(str(path), "image", 1.0, 1, image=image)
    capture = cv2.VideoCapture(str(path))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    if not capture.isOpened() or count <= 0 and not capture.grab():
        capture.release()
        raise CnnTreeError(f"{path}: unreadable video (not a video file, or a format this OpenCV cannot decode)")
    if count <= 0:  # it had to grab a frame to know: start again
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
    fps = capture.get(cv2.CAP_PROP_FPS)
    return Source(str(path), "video", fps if 1 <= fps <= 240 else 25.0, count or None, capture)


def check_outputs(source: Source, out, show: bool) -> None:
    """Refuse unusable output settings before any frame is processed."""
    if out is not None:
        suffix = Path(out).suffix.lower()
        if source.kind == "image" and suffix not in IMAGE_SUFFIXES:
            raise CnnTreeError(f"--out {out}: an image source writes an image; use one of {', '.join(sorted(IMAGE_SUFFIXES))}")
        if source.kind != "image" and suffix not in VIDEO_CODECS:
            raise CnnTreeError(f"--out {out}: a video is written as {', '.join(VIDEO_CODECS)}")
    if show:
        try:
            cv2.namedWindow("cnntree mirror", cv2.WINDOW_NORMAL)
        except cv2.error:
            raise CnnTreeError("--show: this OpenCV has no window support (opencv-python-headless, or no "
                               "display); drop --show and use --out") from None


# ---------------------------------------------------------------------------- the loop


@dataclass
class MirrorRun:
    """What a run saw: per-frame results (the main face's smoothed probabilities) and timings."""

    source: Source
    classes: list
    label: object = None  # probabilities -> (name, probability): Mirror.label
    times: list = field(default_factory=list)
    main: list = field(default_factory=list)  # (classes,) smoothed probabilities or NaN rows
    faces: int = 0
    frames: int = 0
    seconds: float = 0.0
    outputs: dict = field(default_factory=dict)
    tracks: dict = field(default_factory=dict)  # track id -> [frames, summed probabilities, last box]

    def add(self, result: FrameResult) -> None:
        """Count one processed frame, keep its main face's probabilities and sum each face's."""
        self.frames += 1
        self.faces += len(result.faces)
        self.times.append(result.time)
        self.main.append(result.main.probabilities if result.main else np.full(len(self.classes), np.nan))
        for track in result.faces:
            seen = self.tracks.setdefault(track.id, [0, np.zeros(len(self.classes)), None])
            seen[0] += 1
            seen[1] += track.probabilities
            seen[2] = [int(v) for v in track.box]

    def summary(self) -> dict:
        """Frames, faces, timing and outputs as JSON-ready values, and per face (track) its label:
        the class of its highest mean probability over the frames it was seen in."""
        faces = []
        for track, (frames, summed, box) in self.tracks.items():
            mean = summed / frames
            label, probability = self.label(mean) if self.label else (self.classes[int(mean.argmax())], mean.max())
            faces.append({"track": track, "frames": frames, "box": box, "label": label,
                          "probability": round(float(probability), 4),
                          "probabilities": {c: round(float(p), 4) for c, p in zip(self.classes, mean)}})
        return {"source": self.source.name, "frames": self.frames, "faces": self.faces,
                "frames_with_faces": int(sum(not np.isnan(p).any() for p in self.main)),
                "seconds": round(self.seconds, 3), "fps": round(self.frames / self.seconds, 2) if self.seconds else None,
                "outputs": self.outputs, "tracks": faces}


def run_mirror(mirror: Mirror, source: Source, out=None, jsonl=None, timeline=None, show: bool = False,
               max_frames: int | None = None, printer=print) -> MirrorRun:
    """Drive ``source`` through ``mirror``; write the annotated output, JSON lines and timeline."""
    from ..plots import draw_timeline

    check_outputs(source, out, show)
    run = MirrorRun(source, mirror.classes, mirror.label)
    with contextlib.ExitStack() as stack:
        writer = stack.enter_context(VideoOutput(out, source.fps)) if out and source.kind != "image" else None
        lines = stack.enter_context(_atomic_text(jsonl)) if jsonl else None
        started, reported = time.perf_counter(), time.perf_counter()
        try:
            for index, seconds, frame in source.frames():
                result = mirror.process(frame, index, seconds)
                run.add(result)
                if lines:
                    lines.write(json.dumps(result.record(mirror.classes)) + "\n")
                if writer or show or (out and source.kind == "image"):
                    annotated = mirror.annotate(frame, result)
                    if writer:
                        writer.write(annotated)
                    elif out:
                        _write_image(out, annotated)
                    if show:
                        cv2.imshow("cnntree mirror", annotated)
                        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                            break
                if time.perf_counter() - reported >= 2.0:
                    reported = time.perf_counter()
                    total = f"/{source.frame_count}" if source.frame_count else ""
                    printer(f"[mirror] frame {index + 1}{total}, {len(result.faces)} face(s), "
                            f"{run.frames / (reported - started):.1f} frames/s")
                if max_frames and run.frames >= max_frames:
                    break
        except KeyboardInterrupt:
            if source.kind != "camera":
                raise  # a file's outputs stay unwritten rather than half-written
        run.seconds = time.perf_counter() - started
    if show:
        cv2.destroyAllWindows()
    for name, path in (("out", out), ("jsonl", jsonl)):
        if path:
            run.outputs[name] = str(path)
    if timeline:
        run.outputs["timeline"] = str(draw_timeline(run.times, np.array(run.main).reshape(-1, len(mirror.classes)),
                                                     mirror.classes, timeline, title=f"{source.name}: main face"))
    return run


def _write_image(path, image) -> None:
    ok, encoded = cv2.imencode(Path(path).suffix.lower(), image)
    if not ok:
        raise CnnTreeError(f"{path}: OpenCV cannot encode this image format")
    write_atomically(path, lambda tmp: encoded.tofile(tmp))


class VideoOutput:
    """A video written under a temporary name and renamed when the context ends without an error."""

    def __init__(self, path, fps: float):
        self.path, self.fps, self.writer = Path(path), fps, None

    def __enter__(self):
        self._atomic = atomic_path(self.path)
        self.tmp = self._atomic.__enter__()
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append a frame (the writer opens with the first frame's size)."""
        if self.writer is None:  # the size is known with the first frame
            fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[self.path.suffix.lower()])
            self.writer = cv2.VideoWriter(str(self.tmp), fourcc, self.fps, (frame.shape[1], frame.shape[0]))
            if not self.writer.isOpened():
                raise CnnTreeError(f"{self.path}: OpenCV cannot write this video format here")
        self.writer.write(frame)

    def __exit__(self, *exc):
        if self.writer is not None:
            self.writer.release()
        return self._atomic.__exit__(*exc)


@contextlib.contextmanager
def _atomic_text(path):
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        yield f
