"""Rebuild the bundled sample: a class-stratified FER2013 subset in the standard CSV form.

    python scripts/make_sample.py fer2013.csv.gz cnntree/sample/fer2013_sample.csv.gz
"""

import argparse
import gzip

import numpy as np

from cnntree.data import load_faces

PER_CLASS = {"Training": 180, "PublicTest": 35, "PrivateTest": 35}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_faces(args.source)
    rng = np.random.default_rng(args.seed)
    chosen = []
    for split, n in PER_CLASS.items():
        for label in range(len(data.classes)):
            members = np.flatnonzero((data.splits == split) & (data.labels == label))
            chosen.extend(rng.choice(members, size=min(n, len(members)), replace=False))
    chosen = np.sort(chosen)  # keep the source's row order: Training, PublicTest, PrivateTest
    with gzip.open(args.out, "wt", compresslevel=9, newline="\n") as f:
        f.write("emotion,pixels,Usage\n")
        for i in chosen:
            pixels = " ".join(map(str, data.images[i].ravel().tolist()))
            f.write(f"{data.labels[i]},{pixels},{data.splits[i]}\n")
    print(f"wrote {len(chosen)} faces to {args.out}")


if __name__ == "__main__":
    main()
