"""The live mirror in the browser: ``cnntree serve``.

The page (``static/mirror.html``) reads the webcam with getUserMedia and sends downscaled JPEG
frames over a WebSocket, the next one when the previous answer has come back, so no queue builds
up. The server runs each frame through the same :class:`~cnntree.live.mirror.Mirror` as ``cnntree
mirror`` (detection, one batch per frame, tracking, smoothing: one code path), one mirror per
client, one shared classifier. Rehearsal mode scores the main face against a script with
``live.rehearse`` and answers with the same report ``cnntree rehearse`` writes. Uploads (a photo or
a short video) come back labelled with the JSON lines ``cnntree mirror --jsonl`` writes.

Everything is bounded: frame and upload sizes, frame sides, video length, answers per second and
clients at once; a bad frame or upload gets a message and the server goes on. Nothing is written
to disk (a video upload is decoded from a temporary file, removed at once).
"""

from __future__ import annotations

import asyncio
import base64
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import CnnTreeError
from .detect import FaceDetector, FaceTracker
from .mirror import Mirror, MirrorRun, Source
from .rehearse import parse_script, report_text, score_segments

PAGE = Path(__file__).with_name("static") / "mirror.html"
MAX_FRAME_BYTES = 2 * 1024 * 1024  # one JPEG frame
MAX_SIDE = 1920  # a frame's or photo's longer side, in pixels
MAX_UPLOAD_BYTES = 32 * 1024 * 1024
MAX_VIDEO_FRAMES = 1500  # a minute at 25 frames per second
MAX_ANSWERS_PER_SECOND = 30  # per client: frames sent faster wait their turn


def check_side(image: np.ndarray, what: str) -> np.ndarray:
    """``image`` when its longer side is within the bound; a one-line error otherwise."""
    if max(image.shape[:2]) > MAX_SIDE:
        raise CnnTreeError(f"{what}: {image.shape[1]}x{image.shape[0]} pixels; at most {MAX_SIDE} a side")
    return image


def decode_frame(data: bytes) -> np.ndarray:
    """A BGR frame from the bytes a page sent, bounded; a one-line error otherwise."""
    if not data:
        raise CnnTreeError("frame: empty")
    if len(data) > MAX_FRAME_BYTES:
        raise CnnTreeError(f"frame: {len(data):,} bytes, more than the {MAX_FRAME_BYTES:,} a frame may have")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise CnnTreeError("frame: not an image (JPEG, PNG or WebP)")
    return check_side(image, "frame")


class Served:
    """What every client shares: the classifier, its hierarchy for trees, a lock around the
    networks (one batch at a time), and the count of clients."""

    def __init__(self, classifier, name: str, max_clients: int = 4, answers=None, smoothing: float = 0.6):
        self.classifier, self.name, self.max_clients = classifier, name, max_clients
        self.answers, self.smoothing = answers, smoothing
        self.classes = list(classifier.spec_.classes)
        self.lock = asyncio.Lock()
        self.clients = 0
        self.path = None
        if classifier.spec_.kind == "tree":
            from ..compose.climbing import Hierarchy

            self.path = Hierarchy.from_spec(classifier.spec_, self.classes)

    def mirror(self) -> Mirror:
        """A mirror of its own for one client (its own tracks), on the shared classifier."""
        return Mirror(self.classifier, FaceDetector(), FaceTracker(smoothing=self.smoothing), answers=self.answers)

    def describe(self, mirror: Mirror, result) -> dict:
        """A frame's faces as JSON: box, track, label, probability, the seven probabilities and,
        for a tree, the path from the root to the face's class with each node's probability."""
        faces = []
        for track in result.faces:
            label, probability = mirror.label(track.probabilities)
            face = {"track": track.id, "box": [int(v) for v in track.box], "label": label,
                    "probability": round(probability, 4), "main": track is result.main,
                    "probabilities": {c: round(float(p), 4) for c, p in zip(self.classes, track.probabilities)}}
            if self.path is not None:
                nodes = self.path.node_probabilities(track.probabilities[None])[0]
                climb = self.path.path[int(track.probabilities.argmax())][::-1]
                face["path"] = [{"node": self.path.nodes[j].label, "probability": round(float(nodes[j]), 4)}
                                for j in climb]
            faces.append(face)
        return {"type": "frame", "index": result.index, "time": round(result.time, 3), "faces": faces}

    async def process(self, mirror: Mirror, frame: np.ndarray, index: int, seconds: float):
        async with self.lock:
            return await run_in_threadpool(mirror.process, frame, index, seconds)


class Rehearsal:
    """A script being rehearsed in one client: the main face's probabilities by time, scored live."""

    def __init__(self, script, classes):
        self.segments = parse_script(script, classes, "script")
        self.classes, self.times, self.main = classes, [], []
        self.started = time.perf_counter()

    def add(self, result) -> None:
        self.times.append(time.perf_counter() - self.started)
        self.main.append(result.main.probabilities if result.main else np.full(len(self.classes), np.nan))

    def scores(self) -> list[dict]:
        return score_segments(self.segments, self.times, np.array(self.main).reshape(-1, len(self.classes)),
                              self.classes)

    def state(self) -> dict:
        now = time.perf_counter() - self.started
        current = next((i for i, s in enumerate(self.segments) if s.start <= now < s.end), None)
        return {"elapsed": round(now, 2), "current": current, "done": now >= self.segments[-1].end,
                "segments": [{k: r[k] for k in ("line", "expected", "dominant", "score", "verdict")}
                             for r in self.scores()]}


def create_app(served: Served) -> Starlette:
    """The web app: the page, the WebSocket of frames, uploads."""

    async def page(request: Request):
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    async def info(request: Request):
        return JSONResponse({"model": served.name, "kind": served.classifier.spec_.kind, "classes": served.classes,
                             "tree": served.path is not None, "max_frame_bytes": MAX_FRAME_BYTES,
                             "max_upload_bytes": MAX_UPLOAD_BYTES})

    async def frames(websocket: WebSocket):
        await websocket.accept()
        if served.clients >= served.max_clients:
            await websocket.send_json({"type": "busy", "message": f"the mirror serves {served.max_clients} "
                                       "clients at once; try again when one has left"})
            await websocket.close(code=1013)
            return
        served.clients += 1
        mirror, rehearsal, index, started, last = served.mirror(), None, 0, time.perf_counter(), 0.0
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("text") is not None:
                    rehearsal, reply = command(message["text"], rehearsal)
                    await websocket.send_json(reply)
                    continue
                await asyncio.sleep(max(0.0, last + 1 / MAX_ANSWERS_PER_SECOND - time.perf_counter()))
                now = last = time.perf_counter()
                try:
                    frame = decode_frame(message.get("bytes") or b"")
                except CnnTreeError as error:
                    await websocket.send_json({"type": "error", "message": str(error)})
                    continue
                ticked = time.perf_counter()
                result = await served.process(mirror, frame, index, now - started)
                index += 1
                reply = served.describe(mirror, result)
                reply["ms"] = round((time.perf_counter() - ticked) * 1000, 1)
                if rehearsal is not None:
                    rehearsal.add(result)
                    reply["rehearsal"] = rehearsal.state()
                await websocket.send_json(reply)
        except WebSocketDisconnect:
            pass
        finally:
            served.clients -= 1

    def command(text: str, rehearsal):
        """A client's text message: start a rehearsal with a script, or stop it for its report."""
        try:
            message = json.loads(text)
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "rehearse":
                return Rehearsal(message.get("script"), served.classes), {"type": "rehearsing"}
            if kind == "stop":
                if rehearsal is None:
                    raise CnnTreeError("stop: no rehearsal is running")
                rows = rehearsal.scores()
                html = report_text(rows, f"Rehearsal with {served.name}", ".html")
                return None, {"type": "report", "rows": rows, "html": html}
            raise CnnTreeError(f"unknown message {kind!r}: send frames as binary JPEG, or "
                               '{"type": "rehearse", "script": ...} / {"type": "stop"}')
        except (ValueError, CnnTreeError) as error:
            return rehearsal, {"type": "error", "message": str(error)}

    async def upload(request: Request):
        name = request.query_params.get("name", "upload")
        declared = int(request.headers.get("content-length") or 0)
        if declared > MAX_UPLOAD_BYTES:
            return JSONResponse({"error": f"{name}: {declared:,} bytes, more than the {MAX_UPLOAD_BYTES:,} an upload "
                                 "may have"}, status_code=413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_UPLOAD_BYTES:
                return JSONResponse({"error": f"{name}: more than the {MAX_UPLOAD_BYTES:,} bytes an upload may have"},
                                    status_code=413)
        try:
            async with served.lock:
                return JSONResponse(await run_in_threadpool(label_upload, served, name, bytes(body)))
        except CnnTreeError as error:
            return JSONResponse({"error": str(error)}, status_code=400)

    routes = [Route("/", page), Route("/info", info), Route("/upload", upload, methods=["POST"]),
              WebSocketRoute("/ws", frames)]
    return Starlette(routes=routes)


def label_upload(served: Served, name: str, data: bytes) -> dict:
    """A photo or a short video, labelled as ``cnntree mirror`` labels it: the annotated photo (or
    the video's timeline picture) as a data URL, the summary per face and the JSON lines."""
    mirror = served.mirror()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is not None:
        frames = [(0, 0.0, check_side(image, name))]
        source = Source(name, "image", 0.0, 1)
    else:
        frames, source = video_frames(name, data)
    run = MirrorRun(source, served.classes, mirror.label)
    lines, annotated = [], None
    for index, seconds, frame in frames:
        result = mirror.process(frame, index, seconds)
        run.add(result)
        lines.append(json.dumps(result.record(served.classes)))
        if source.kind == "image":
            annotated = mirror.annotate(frame, result)
    summary = run.summary()
    if annotated is not None:
        picture = cv2.imencode(".jpg", annotated)[1].tobytes()
    else:
        from ..plots import draw_timeline

        with tempfile.TemporaryDirectory() as tmp:
            path = draw_timeline(run.times, np.array(run.main).reshape(-1, len(served.classes)), served.classes,
                                 Path(tmp) / "timeline.png", title=f"{name}: main face")
            picture = path.read_bytes()
    kind = "image/jpeg" if annotated is not None else "image/png"
    return {"name": name, "kind": source.kind, "summary": summary, "jsonl": "\n".join(lines) + "\n",
            "picture": f"data:{kind};base64," + base64.b64encode(picture).decode()}


def video_frames(name: str, data: bytes):
    """The frames of an uploaded video (bounded), decoded from a temporary file removed at once."""
    with tempfile.NamedTemporaryFile(suffix=Path(name).suffix or ".mp4") as tmp:
        tmp.write(data)
        tmp.flush()
        capture = cv2.VideoCapture(tmp.name)
        if not capture.isOpened():
            raise CnnTreeError(f"{name}: neither an image nor a video OpenCV can read")
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        frames = []
        while len(frames) < MAX_VIDEO_FRAMES:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append((len(frames), len(frames) / fps, check_side(frame, name)))
        capture.release()
    if not frames:
        raise CnnTreeError(f"{name}: neither an image nor a video OpenCV can read")
    return frames, Source(name, "video", fps, len(frames))
