"""Benchmark: ``cnntree serve``'s speed. The server's answer to one 640x480 frame with one face
(decode, detection, classification, tracking; median over --frames) per model and runtime, and
the labelled frames per second a real browser shows (headless Chromium, its fake camera playing
sample faces, for --seconds). Targets: <= 30 ms per frame, >= 15 labelled frames/s. Prints a
table, writes JSON, and with --screenshot a picture of the page.

    python bench/serve.py [--frames 100] [--seconds 15] [--screenshot docs/serve.png]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from cnntree import export_model, load_model
from cnntree.data import load_faces
from cnntree.live.detect import FaceDetector
from cnntree.live.scenes import background, detectable, render, write_y4m
from cnntree.live.serve import Served, create_app, decode_frame

ROOT = Path(__file__).resolve().parents[1]


def server_ms(clf, frame_jpeg: bytes, frames: int) -> float:
    """Median ms for the server's work on one frame (as the WebSocket handler does it)."""
    served = Served(clf, "bench")
    mirror = served.mirror()

    async def one(index):
        started = time.perf_counter()
        frame = decode_frame(frame_jpeg)
        result = await served.process(mirror, frame, index, index / 25)
        served.describe(mirror, result)
        return (time.perf_counter() - started) * 1000

    async def run():
        await one(0)  # warm-up: the first call traces
        return [await one(i + 1) for i in range(frames)]

    return statistics.median(asyncio.run(run()))


def browser(clf, scenes, seconds: float, screenshot: str | None) -> dict:
    """Labelled frames per second on the page in headless Chromium with a fake camera."""
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory() as tmp, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        write_y4m(Path(tmp) / "camera.y4m", scenes, fps=25)
        server = uvicorn.Server(uvicorn.Config(create_app(Served(clf, "default")), host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for flag in ("--headless=new", "--no-sandbox", "--use-fake-ui-for-media-stream",
                     "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={tmp}/camera.y4m",
                     "--window-size=1100,1000"):
            options.add_argument(flag)
        chrome = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
        try:
            chrome.get(f"http://127.0.0.1:{port}/?start")
            WebDriverWait(chrome, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "li.face"))
            first = chrome.execute_script("return window.cnntreeStats.answers")
            time.sleep(seconds)
            answers = chrome.execute_script("return window.cnntreeStats.answers") - first
            if screenshot:  # at a moment with a labelled face
                WebDriverWait(chrome, 10, poll_frequency=0.05).until(
                    lambda d: d.find_elements(By.CSS_SELECTOR, "li.face") and d.find_elements(By.CSS_SELECTOR, ".bar"))
                chrome.save_screenshot(screenshot)
            return {"labelled_fps": round(answers / seconds, 1), "answers": answers, "seconds": seconds}
        finally:
            chrome.quit()
            server.should_exit = True
            thread.join(timeout=10)


def main() -> None:
    from timing import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--models", default="default,small")
    parser.add_argument("--screenshot", help="a picture of the page (default model) here")
    parser.add_argument("--json", default=str(ROOT / "bench" / "serve.json"))
    args = parser.parse_args()
    sample = load_faces("sample", cache=False)
    happy = np.flatnonzero(sample.labels == sample.classes.index("happy"))
    happy = happy[detectable(sample.images[happy], FaceDetector(), side=220)][:5]  # faces the cascade finds
    scenes = [render(sample.images[happy[(k // 10) % len(happy):][:1]], [(200 + 2 * (k % 10), 120, 220)], background())
              for k in range(50)]
    frame = cv2.imencode(".jpg", scenes[0])[1].tobytes()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            clf = load_model(name)
            rows.append({"model": name, "runtime": "keras", "server_ms": round(server_ms(clf, frame, args.frames), 2)})
            try:
                onnx = load_model(export_model(clf, Path(tmp) / f"{name}-onnx", "onnx"))
                rows.append({"model": name, "runtime": "onnx", "server_ms": round(server_ms(onnx, frame, args.frames), 2)})
            except Exception as error:  # noqa: BLE001 - the ONNX extra is optional
                rows.append({"model": name, "runtime": "onnx", "server_ms": None, "note": str(error)[:120]})
    page = None
    if shutil.which("chromium") and shutil.which("chromedriver"):
        page = browser(load_model("default"), scenes, args.seconds, args.screenshot)
    print(f"{'model':8s} {'runtime':8s} {'server ms / 640x480 frame, 1 face':>34s}")
    for r in rows:
        print(f"{r['model']:8s} {r['runtime']:8s} {r['server_ms'] if r['server_ms'] is not None else '-':>34}")
    if page:
        print(f"browser (default, Keras): {page['labelled_fps']} labelled frames/s over {page['seconds']:g} s")
    result = {"command": f"python bench/serve.py --frames {args.frames} --seconds {args.seconds:g}", "rows": rows,
              "browser": page, "cpu": cpu_model()}
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
