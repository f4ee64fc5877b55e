"""Make a 6-second demo "rehearsal" video for examples/rehearsal_script.json, with no camera.

    python examples/make_rehearsal_video.py runs/rehearsal.mp4

One FER2013 face per script segment (taken from the bundled sample, of the class the segment
expects, one the face detector finds), enlarged onto a generated backdrop at the same place, so
the mirror tracks a single "actor" whose expression changes on cue.
"""

import json
import sys
from pathlib import Path

import numpy as np

from cnntree.data import load_faces
from cnntree.live import scenes
from cnntree.live.detect import FaceDetector

HERE = Path(__file__).resolve().parent


def main(out: str, fps: float = 25.0) -> None:
    segments = json.loads((HERE / "rehearsal_script.json").read_text())["segments"]
    sample = load_faces("sample")
    test = np.flatnonzero(sample.splits == "PrivateTest")
    found = test[scenes.detectable(sample.images[test], FaceDetector())]
    backdrop, box = scenes.background(), [(248, 168, 144)]
    frames = []
    for segment in segments:
        face = next(i for i in found if sample.classes[sample.labels[i]] == segment["expected"])
        frame = scenes.render(sample.images[[face]], box, backdrop)
        frames += [frame] * int(round((segment["end"] - segment["start"]) * fps))
    count = scenes.write_video(out, frames, fps)
    print(f"wrote {out}: {count} frames at {fps:g} fps")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/rehearsal.mp4")
