"""Benchmark: each calibration strategy refitted on a trained model's validation split, measured on
its test splits (accuracy, ECE, NLL, Brier), as a table and JSON.

    python bench/calibration.py --data fer2013.csv.gz default runs/models/moravcik ...

Nothing is written to the models: each strategy is fitted on a loaded copy in memory. The
accuracy column is the model's default mode (soft routing for trees, the spec's vote for
ensembles), so it shows whether calibration changes what a soft tree answers.
"""

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("none", "prior", "temperature", "vector", "isotonic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model folders or shipped names")
    parser.add_argument("--data", help="the data the models were trained on (their validation split is refitted on)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--json", default=str(ROOT / "bench" / "calibration.json"))
    args = parser.parse_args()

    from cnntree import load_for_spec, load_model, with_overrides
    from cnntree.evaluation.metrics import evaluate

    rows = []
    for reference in args.models:
        clf = load_model(reference)
        data, splits = load_for_spec(with_overrides(clf.spec_, data=args.data))
        val = splits.validation
        for method in args.methods:
            started = time.perf_counter()
            fitted = clf.calibrate(data.images[val], data.labels[val], method)
            row = {"model": str(reference), "spec": clf.spec_.name, "kind": clf.spec_.kind, "method": method,
                   "networks": len(clf.spec_.nodes), "fitted": fitted}
            for split, index in {"Validation": val, **splits.tests}.items():
                result = evaluate(clf, clf.network_outputs(data.images[index]), data.labels[index])
                m = result["modes"][result["default_mode"]]
                row[split] = {k: m[k] for k in ("accuracy", "macro_f1", "ece", "nll", "brier")}
                row[split]["node_ece"] = {n: r["ece"] for n, r in result["nodes"].items()}
            row["seconds"] = round(time.perf_counter() - started, 1)
            rows.append(row)
            p = row["PrivateTest"]
            print(f"{clf.spec_.name:24s} {method:12s} acc {p['accuracy']:.4f}  ECE {p['ece']:.4f}  NLL {p['nll']:.4f}  "
                  f"Brier {p['brier']:.4f}", flush=True)
    print()
    print(table(rows))
    Path(args.json).write_text(json.dumps(rows, indent=2))
    print(f"wrote {args.json}")


def table(rows) -> str:
    lines = ["| model | calibration | PrivateTest acc | ECE | NLL | Brier | PublicTest acc | ECE | NLL | "
             "per-network ECE (PrivateTest) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p, q = r["PrivateTest"], r["PublicTest"]
        nodes = ", ".join(f"{n} {v:.3f}" for n, v in p["node_ece"].items()) if r["networks"] > 1 else "-"
        lines.append(f"| {r['spec']} | {r['method']} | {p['accuracy']:.4f} | {p['ece']:.4f} | {p['nll']:.4f} | "
                     f"{p['brier']:.4f} | {q['accuracy']:.4f} | {q['ece']:.4f} | {q['nll']:.4f} | {nodes} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
