"""Benchmark: each training-recipe option switched on alone, at a small budget, against the same
baseline. Prints a table and writes JSON.

    python bench/recipe.py --data fer2013.csv.gz --faces 6000 --epochs 6

The baseline is a single-network spec (default: trees/default_mini_xception.json) trained on a
stratified ``--faces`` subset of Training for ``--epochs`` epochs (its cosine schedule fitted to that
budget); every variant changes one setting and trains again from the same seed. Validation is the
spec's slice of Training; the figures are PublicTest and PrivateTest accuracy over all their faces.
Test-time augmentation rows reuse the baseline's network. One seed and a small budget: differences
of a point or two are within noise, which the table's McNemar p-value (vs the baseline, PrivateTest)
says for each row.
"""

import argparse
import copy
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]

# one setting each, on top of the baseline: (name, section, settings)
VARIANTS = [
    ("baseline", None, {}),
    ("label smoothing 0.1", "train", {"label_smoothing": 0.1}),
    ("ema 0.99", "train", {"ema": 0.99}),
    ("mixup 0.2", "augment", {"mixup": 0.2}),
    ("cutmix 1.0", "augment", {"cutmix": 1.0}),
    ("warm-up 1 epoch", "train", {"warmup_epochs": 1}),
]
TEST_TIME = ["flip", "ten_crop"]


def stratified_subset(labels, index, n, seed=0):
    import numpy as np

    if n >= len(index):
        return index
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(index[labels[index] == c])[:max(1, round(n * np.mean(labels[index] == c)))]
              for c in np.unique(labels[index])]
    return np.sort(np.concatenate(picked))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(ROOT / "trees" / "default_mini_xception.json"))
    parser.add_argument("--data", default="sample")
    parser.add_argument("--faces", type=int, default=6000, help="training faces (a stratified subset of Training)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    parser.add_argument("--json", default=str(ROOT / "bench" / "recipe.json"))
    args = parser.parse_args()

    import keras
    import numpy as np

    from cnntree import CnnTreeClassifier, with_overrides
    from cnntree.data import load_for_spec
    from cnntree.spec import load_spec, parse_spec
    from cnntree.workflows.compare import mcnemar

    base = with_overrides(load_spec(args.spec), data=args.data, epochs=args.epochs)
    data, splits = load_for_spec(base)
    train = stratified_subset(data.labels, splits.train, args.faces)
    validation = (data.images[splits.validation], data.labels[splits.validation])
    print(f"{args.spec}: {len(train)} training faces, {len(splits.validation)} validation, {args.epochs} epochs, "
          f"{keras.backend.backend()}", flush=True)
    rows, baseline, correct = [], None, {}

    def measure(name, clf, seconds):
        row = {"variant": name, "wall_s": round(seconds, 1)}
        for split, index in splits.tests.items():
            predicted = clf.predict_proba(data.images[index]).argmax(axis=1)
            row[split] = float(np.mean(predicted == data.labels[index]))
            if split == "PrivateTest":
                correct[name] = predicted == data.labels[index]
        if "baseline" in correct and name != "baseline":
            row["p_vs_baseline"] = mcnemar(correct["baseline"], correct[name])["p_value"]
        rows.append(row)
        print(f"{name:22s} " + "  ".join(f"{k} {v:.4f}" for k, v in row.items() if k in splits.tests)
              + f"  {seconds / 60:.1f} min", flush=True)

    for name, section, settings in VARIANTS:
        if args.only and name not in args.only:
            continue
        raw = copy.deepcopy(base.raw)
        if section:
            raw.setdefault("defaults", {}).setdefault(section, {}).update(settings)
        spec = parse_spec(raw, source=base.source, base_dir=base.base_dir, overrides=base.overrides)
        with tempfile.TemporaryDirectory(prefix="cnntree-recipe-") as work:
            started = time.perf_counter()
            clf = CnnTreeClassifier(spec, work_dir=work, verbose=1)
            clf.fit(data.images[train], data.labels[train], validation)
            measure(name, clf, time.perf_counter() - started)
        if name == "baseline":
            baseline = clf
    for mode in TEST_TIME if baseline is not None and not args.only else []:
        measure(f"test-time {mode}", baseline.set_params(test_time=mode), 0.0)
    result = {"spec": args.spec, "data": args.data, "faces": len(train), "epochs": args.epochs,
              "machine": f"{platform.machine()} {os.cpu_count()} cores, Keras {keras.__version__} on "
                         f"{keras.backend.backend()}",
              "command": "python bench/recipe.py " + " ".join(
                  f"--{k} {v}" for k, v in (("data", args.data), ("faces", args.faces), ("epochs", args.epochs))),
              "rows": rows}
    Path(args.json).write_text(json.dumps(result, indent=1))
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
