"""Write a CK+-like class-folder data set from a FER2013 CSV, to try transfer without CK+.

    python scripts/make_folder_dataset.py fer2013.csv.gz runs/ckplus_like --per-class 120

Faces of one split (PrivateTest by default) are written as 48x48 PNGs under class folders with
CK+'s names (anger, disgust, fear, happiness, sadness, surprise; neutral faces become "contempt",
a class the FER2013 models lack), and file names like CK+'s, ``S<subject>_<n>.png``, with each
subject holding faces of every class: so ``--group-regex '^(S\\d+)_'`` gives subject-independent
folds.
"""

import argparse
from pathlib import Path

import cv2
import numpy as np

from cnntree.data import load_faces

CKPLUS_NAMES = {"angry": "anger", "happy": "happiness", "sad": "sadness", "neutral": "contempt"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("csv")
    parser.add_argument("out")
    parser.add_argument("--split", default="PrivateTest")
    parser.add_argument("--per-class", type=int, default=120)
    parser.add_argument("--subjects", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_faces(args.csv)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    for label, name in enumerate(data.classes):
        pool = np.flatnonzero((data.labels == label) & (data.splits == args.split))
        chosen = rng.permutation(pool)[:args.per_class]
        folder = out / CKPLUS_NAMES.get(name, name)
        folder.mkdir(parents=True, exist_ok=True)
        for k, i in enumerate(chosen):
            cv2.imwrite(str(folder / f"S{k % args.subjects:03d}_{k:04d}.png"), data.images[i])
        print(f"{folder}: {len(chosen)} faces")


if __name__ == "__main__":
    main()
