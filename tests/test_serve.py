"""``cnntree serve``: the HTTP and WebSocket API (Starlette's test client), and the page in a real
browser (headless Chromium with a fake camera playing faces of the bundled sample)."""

import json
import shutil
import socket
import threading

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from cnntree.live.scenes import background, render  # noqa: E402
from cnntree.live.serve import MAX_FRAME_BYTES, Served, create_app  # noqa: E402

SCRIPT = [{"start": 0, "end": 1.5, "line": "Hello!", "expected": "happy"},
          {"start": 1.5, "end": 3, "line": "Still happy.", "expected": "happy"}]


@pytest.fixture(scope="module")
def small():
    from cnntree import load_model

    return load_model("small")


@pytest.fixture(scope="module")
def scene(sample):
    happy = np.flatnonzero(sample.labels == sample.classes.index("happy"))
    return render(sample.images[happy[:1]], [(220, 140, 200)], background())


def jpeg(frame) -> bytes:
    return cv2.imencode(".jpg", frame)[1].tobytes()


def client(classifier, **options):
    return TestClient(create_app(Served(classifier, "small", **options)))


def test_a_frame_with_a_face_comes_back_labelled(small, scene):
    with client(small) as http:
        assert "cnntree mirror" in http.get("/").text
        assert http.get("/info").json()["classes"] == list(small.spec_.classes)
        with http.websocket_connect("/ws") as ws:
            ws.send_bytes(jpeg(scene))
            answer = ws.receive_json()
    assert answer["type"] == "frame" and len(answer["faces"]) == 1
    face = answer["faces"][0]
    x, y, w, h = face["box"]
    assert abs(x - 220) < 40 and abs(y - 140) < 40 and 140 < w < 260 and face["main"]
    assert face["label"] in small.spec_.classes and len(face["probabilities"]) == 7
    assert sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    assert face["probability"] == max(face["probabilities"].values())


def test_bad_frames_get_a_message_and_the_server_goes_on(small, scene):
    with client(small) as http, http.websocket_connect("/ws") as ws:
        ws.send_bytes(b"not an image at all")
        assert ws.receive_json() == {"type": "error", "message": "frame: not an image (JPEG, PNG or WebP)"}
        ws.send_bytes(b"\xff" * (MAX_FRAME_BYTES + 1))
        assert "more than the 2,097,152 a frame may have" in ws.receive_json()["message"]
        ws.send_bytes(jpeg(np.zeros((2000, 100, 3), np.uint8)))
        assert ws.receive_json()["message"] == "frame: 100x2000 pixels; at most 1920 a side"
        ws.send_text("{not json")
        assert ws.receive_json()["type"] == "error"
        ws.send_bytes(jpeg(scene))
        assert ws.receive_json()["type"] == "frame"


def test_frames_sent_at_once_are_answered_at_most_30_a_second(small, scene):
    with client(small) as http, http.websocket_connect("/ws") as ws:
        for _ in range(4):
            ws.send_bytes(jpeg(scene))  # without waiting for answers
        answers = [ws.receive_json() for _ in range(4)]
    assert [a["type"] for a in answers] == ["frame"] * 4
    assert min(np.diff([a["time"] for a in answers])) >= 1 / 30 - 0.002  # when the server took each frame


def test_the_client_bound_holds(small):
    with client(small, max_clients=1) as http, http.websocket_connect("/ws"):
        with http.websocket_connect("/ws") as second:
            answer = second.receive_json()
    assert answer["type"] == "busy" and "1 clients at once" in answer["message"]


def test_a_rehearsal_is_scored_with_the_rehearse_report(small, scene):
    with client(small) as http, http.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "rehearse", "script": [{"start": 0, "end": 5, "line": "x", "expected": "hapy"}]}))
        assert "did you mean \"happy\"" in ws.receive_json()["message"]
        ws.send_text(json.dumps({"type": "rehearse", "script": SCRIPT}))
        assert ws.receive_json() == {"type": "rehearsing"}
        for _ in range(3):
            ws.send_bytes(jpeg(scene))
            state = ws.receive_json()["rehearsal"]
        assert state["current"] == 0 and state["segments"][0]["verdict"] in ("match", "weak", "miss")
        ws.send_text(json.dumps({"type": "stop"}))
        report = ws.receive_json()
    assert report["type"] == "report" and report["rows"][0]["frames"] == 3 and report["rows"][1]["verdict"] == "no face"
    assert report["html"].startswith("<!doctype html>") and "Hello!" in report["html"]


def test_uploads_come_back_labelled(small, scene, tmp_path):
    from cnntree.live.scenes import write_video

    with client(small) as http:
        photo = http.post("/upload?name=me.jpg", content=jpeg(scene)).json()
        assert photo["kind"] == "image" and len(photo["summary"]["tracks"]) == 1
        assert photo["picture"].startswith("data:image/jpeg;base64,")
        assert json.loads(photo["jsonl"].splitlines()[0])["faces"][0]["label"] in small.spec_.classes
        write_video(tmp_path / "talk.avi", [scene] * 5, fps=5)
        video = http.post("/upload?name=talk.avi", content=(tmp_path / "talk.avi").read_bytes()).json()
        assert video["kind"] == "video" and video["summary"]["frames"] == 5 and len(video["jsonl"].splitlines()) == 5
        bad = http.post("/upload?name=notes.txt", content=b"hello")
        assert bad.status_code == 400 and "neither an image nor a video" in bad.json()["error"]


def test_a_tree_shows_its_path(tiny_model, scene):
    from cnntree import load_model

    with client(load_model(tiny_model)) as http, http.websocket_connect("/ws") as ws:
        ws.send_bytes(jpeg(scene))
        face = ws.receive_json()["faces"][0]
    assert face["path"][0]["node"] == "any emotion" and face["path"][0]["probability"] == pytest.approx(1, abs=1e-3)
    assert face["path"][-1]["node"] == max(face["probabilities"], key=face["probabilities"].get)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_page_labels_webcam_faces_in_a_real_browser(small, sample, tmp_path):
    """Headless Chromium, its fake camera playing a video of sample faces: labels appear on the
    page within seconds, and a rehearsal produces the report."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("needs Chromium: apt-get install chromium chromium-driver")
    import uvicorn

    from cnntree.live.scenes import write_y4m

    happy = np.flatnonzero(sample.labels == sample.classes.index("happy"))
    frames = [render(sample.images[happy[k % 3:k % 3 + 1]], [(200 + 4 * k, 120, 200)], background()) for k in range(20)]
    write_y4m(tmp_path / "camera.y4m", frames, fps=10)
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Served(small, "small")), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={tmp_path / 'camera.y4m'}",
                 "--window-size=1200,900"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    try:
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        chrome.get(f"http://127.0.0.1:{port}/?start")
        labels = WebDriverWait(chrome, 30, ignored_exceptions=[StaleElementReferenceException]).until(  # the list is
            lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, "li.face")])  # redrawn with every frame
        assert labels and labels[0].split()[0] in small.spec_.classes
        assert chrome.execute_script("return window.cnntreeStats.answers") > 0
        chrome.find_element(By.ID, "script").send_keys(str(script))
        WebDriverWait(chrome, 30).until(lambda d: d.find_elements(By.ID, "report-frame"))
        assert "Hello!" in chrome.find_element(By.ID, "report-frame").get_attribute("srcdoc")
        assert chrome.find_element(By.ID, "report-download").get_attribute("download") == "rehearsal.html"
    finally:
        chrome.quit()
        server.should_exit = True
        thread.join(timeout=10)
