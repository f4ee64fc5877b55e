"""Benchmark: accuracy inside the confusable groups of FER2013, model against model: over the
PrivateTest faces whose true class is in a group, how many get exactly their class.

    python bench/group_accuracy.py --data fer2013.csv.gz [--groups angry,sad,neutral fear,surprise]
        NAME=MODEL [NAME=MODEL ...] [--json bench/group_accuracy.json]

MODEL is anything ``cnntree evaluate`` takes (a folder, a shipped name, an MLflow run id); models
given as NAME=MODEL several times under one NAME (seeds) are pooled. Prints a table, writes JSON.
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="NAME=MODEL")
    parser.add_argument("--data", required=True)
    parser.add_argument("--groups", nargs="+", default=["angry,sad,neutral", "fear,surprise"])
    parser.add_argument("--json", default=str(ROOT / "bench" / "group_accuracy.json"))
    args = parser.parse_args()
    import numpy as np

    from cnntree import load_model
    from cnntree.data import load_faces
    from cnntree.tracking.runs import model_dir_of

    data = load_faces(args.data)
    test = np.flatnonzero(data.splits == "PrivateTest")
    truth = np.array(data.classes)[data.labels[test]]
    groups = [group.split(",") for group in args.groups]
    right: dict[str, list] = {}
    for given in args.models:
        name, model = given.split("=", 1)
        clf = load_model(model_dir_of(model))
        right.setdefault(name, []).append(clf.predict(data.images[test]) == truth)
    rows = []
    for name, seeds in right.items():
        pooled, faces = np.concatenate(seeds), np.concatenate([truth] * len(seeds))
        row = {"model": name, "runs": len(seeds), "all": float(pooled.mean())}
        for group in groups:
            inside = np.isin(faces, group)
            row["+".join(group)] = float(pooled[inside].mean())
        rows.append(row)
    keys = ["all", *("+".join(g) for g in groups)]
    print(f"{'model':32s} {'runs':>4s} " + " ".join(f"{k:>20s}" for k in keys))
    for row in rows:
        print(f"{row['model']:32s} {row['runs']:4d} " + " ".join(f"{row[k]:20.4f}" for k in keys))
    Path(args.json).write_text(json.dumps({"command": "python bench/group_accuracy.py " + " ".join(sys.argv[1:]),
                                           "test_faces": int(len(test)), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
