"""Saved classifiers side by side on FER2013's test splits, each under the given test-time views,
with McNemar's exact test against the first one (the reference) on the same faces.

    python bench/saved_models.py --data fer2013.csv.gz --views none,flip \\
        [--json bench/saved_models.json] NAME=MODEL_DIR [NAME=MODEL_DIR ...]

Prints a table and writes JSON. A model fitted on PublicTest (``data.split.train``) gets no
PublicTest figure there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", metavar="NAME=MODEL_DIR", help="the first is the reference")
    parser.add_argument("--data", required=True, help="FER2013 (.csv or .csv.gz)")
    parser.add_argument("--views", default="none,flip", help="test-time views, comma-separated")
    parser.add_argument("--json", default=str(Path(__file__).with_name("saved_models.json")))
    args = parser.parse_args()

    from cnntree import load_model, with_overrides
    from cnntree.data import load_for_spec
    from cnntree.data.splits import training_splits
    from cnntree.workflows.compare import mcnemar

    named = [item.split("=", 1) for item in args.models]
    rows, reference = [], {}
    for number, (name, folder) in enumerate(named):
        clf = load_model(folder)
        fitted_on = training_splits(clf.spec_.data["split"])
        data, splits = load_for_spec(with_overrides(clf.spec_, data=args.data))
        for view in args.views.split(","):
            viewed = clf.set_params(test_time=view)
            row = {"model": name, "folder": folder, "views": view}
            for split in ("PublicTest", "PrivateTest"):
                if split in fitted_on or split not in splits.tests:
                    row[split] = None
                    continue
                index = splits.tests[split]
                right = viewed.predict_proba(data.images[index]).argmax(axis=1) == data.labels[index]
                row[split] = float(right.mean())
                if number == 0:
                    reference[(view, split)] = right
                elif (view, split) in reference:
                    row[f"{split}_vs_reference_p"] = mcnemar(right, reference[(view, split)])["p_value"]
            rows.append(row)
            print(f"{name:24s} {view:9s} " + "  ".join(
                f"{split} {'-' if row[split] is None else f'{row[split]:.4f}'}"
                + (f" (p={row[f'{split}_vs_reference_p']:.2g})" if f"{split}_vs_reference_p" in row else "")
                for split in ("PublicTest", "PrivateTest")), flush=True)
    Path(args.json).write_text(json.dumps({"reference": named[0][0], "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
