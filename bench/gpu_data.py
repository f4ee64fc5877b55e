"""FER2013's Training split packed small enough to travel to a lent GPU machine, and unpacked there.

    python bench/gpu_data.py pack fer2013.csv.gz .gpu/fer2013_training.u8.xz
    python bench/gpu_data.py unpack .gpu/fer2013_training.u8.xz fer2013_training.csv

The device tool carries at most 64 MiB; the full CSV (97 MB gzipped, 67 MB as xz-compressed
pixels) does not fit, its Training split (49 MiB) does. The unpacked CSV has FER2013's columns and
row order, so the validation carve-out (10% of Training, stratified, fixed seed) picks the same
faces as on the full file; the test splits are evaluated where the full data lives.
"""

import argparse
import csv
import gzip
import lzma
from pathlib import Path

import numpy as np

PIXELS = 48 * 48


def pack(source: Path, target: Path) -> None:
    """Labels (one byte each), then the pixels (2304 bytes a face), of the Training rows, xz-compressed."""
    labels, faces = [], []
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", newline="") as f:
        for row in csv.DictReader(f):
            if row["Usage"] == "Training":
                labels.append(int(row["emotion"]))
                faces.append(np.array(row["pixels"].split(), dtype=np.uint8))
    payload = np.array(labels, np.uint8).tobytes() + np.stack(faces).tobytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(lzma.compress(payload, preset=9 | lzma.PRESET_EXTREME))
    print(f"{target}: {len(labels)} Training faces, {target.stat().st_size / 2 ** 20:.1f} MiB")


def unpack(source: Path, target: Path) -> None:
    """The packed faces as a FER2013 CSV (emotion, pixels, Usage)."""
    payload = np.frombuffer(lzma.decompress(source.read_bytes()), np.uint8)
    n = len(payload) // (PIXELS + 1)
    labels, faces = payload[:n], payload[n:].reshape(n, PIXELS)
    with open(target, "w") as f:
        f.write("emotion,pixels,Usage\n")
        f.writelines(f"{label},{' '.join(map(str, face.tolist()))},Training\n" for label, face in zip(labels, faces))
    print(f"{target}: {n} Training faces")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["pack", "unpack"])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args()
    (pack if args.action == "pack" else unpack)(args.source, args.target)


if __name__ == "__main__":
    main()
