"""Synthetic scenes (public, for demos, tests and benchmarks): FER2013 faces enlarged and pasted onto
backgrounds, as frames and videos.

The mirror's tests, its benchmark and the rehearsal example need camera-like input without a
camera or a download; these frames are made from the data the models were trained on.
"""

from __future__ import annotations

import cv2
import numpy as np

from .mirror import VideoOutput


def background(height: int = 480, width: int = 640, seed: int = 0) -> np.ndarray:
    """A BGR room-like backdrop: a soft diagonal gradient with blurred noise (no face-like structure)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = 70 + 90 * (xs / width * 0.6 + ys / height * 0.4)
    noise = cv2.GaussianBlur(rng.normal(0, 25, (height, width)), (0, 0), 6)
    grey = np.clip(base + noise, 0, 255).astype(np.uint8)
    tint = np.array([1.0, 0.95, 0.85])  # a warm cast, so colour frames are not exactly grey
    return np.clip(grey[..., None] * tint, 0, 255).astype(np.uint8)


def grid_boxes(n: int, height: int = 480, width: int = 640, fill: float = 0.8) -> list[tuple[int, int, int]]:
    """(x, y, side) squares for ``n`` faces laid out on a near-square grid over the frame."""
    if n == 0:
        return []
    columns = int(np.ceil(np.sqrt(n * width / height)))
    rows = int(np.ceil(n / columns))
    cell_w, cell_h = width // columns, height // rows
    side = int(min(cell_w, cell_h) * fill)
    return [((k % columns) * cell_w + (cell_w - side) // 2, (k // columns) * cell_h + (cell_h - side) // 2, side)
            for k in range(n)]


def render(faces: np.ndarray, boxes, backdrop: np.ndarray) -> np.ndarray:
    """``backdrop`` with each grey 48x48 face resized into its (x, y, side) box."""
    frame = backdrop.copy()
    for face, (x, y, side) in zip(faces, boxes):
        big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
        frame[y:y + side, x:x + side] = big[..., None]
    return frame


def detectable(images: np.ndarray, detector, side: int = 144) -> np.ndarray:
    """Indices of the faces the detector finds when one is pasted alone at ``side`` pixels."""
    backdrop = background()
    box = [((640 - side) // 2, (480 - side) // 2, side)]
    return np.array([i for i, face in enumerate(images) if len(detector.detect(render([face], box, backdrop)[..., 0]))],
                    dtype=int)


def write_video(path, frames, fps: float = 25.0) -> int:
    """Write BGR ``frames`` as a video (the codec by suffix, as the mirror writes) atomically; returns
    the frame count."""
    count = 0
    with VideoOutput(path, fps) as video:
        for frame in frames:
            video.write(frame)
            count += 1
    return count


def write_y4m(path, frames, fps: int = 10) -> int:
    """Write BGR ``frames`` (all one size) as a Y4M video, the format Chromium's fake camera plays
    (``--use-file-for-fake-video-capture``); returns the frame count."""
    frames = list(frames)
    height, width = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return len(frames)
