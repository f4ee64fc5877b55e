"""Benchmark: accuracy of specs trained on the full FER2013, written to docs/results.md and JSON.

    nohup python bench/accuracy.py --data fer2013.csv.gz --epochs 8 \
        trees/single_mini_xception.json trees/moravcik_mini_xception.json > runs/bench_accuracy.log 2>&1 &

Every spec trains with the same epoch budget (each network ``--epochs`` epochs), is evaluated on
PublicTest and PrivateTest, and is logged to MLflow (experiment ``bench-accuracy``). Trees are
reported with soft and hard routing. Rows are appended to the JSON, and the Markdown table in
docs/results.md between the BENCH-ACCURACY markers is rewritten from all JSON rows.
"""

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- BENCH-ACCURACY:BEGIN -->", "<!-- BENCH-ACCURACY:END -->"


def table(rows) -> str:
    lines = ["| spec | kind | mode | epochs | wall time | PublicTest acc | PrivateTest acc | PrivateTest macro-F1 | "
             "machine | command |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for mode, m in r["modes"].items():
            lines.append(f"| {r['spec']} | {r['kind']} | {mode} | {r['epochs']} | {r['wall_s'] / 60:.0f} min | "
                         f"{m['public_accuracy']:.4f} | {m['private_accuracy']:.4f} | {m['private_macro_f1']:.4f} | "
                         f"{r['machine']} | `{r['command']}` |")
    return "\n".join(lines)


def overridden(spec, args):
    from cnntree import with_overrides

    return with_overrides(spec, data=args.data, epochs=args.epochs, seed=args.seed, workers=args.workers)


def train_tracked(spec, args):
    from cnntree.workflows.train import run_experiment

    outcome = run_experiment(overridden(spec, args), experiment="bench-accuracy", work_dir=ROOT / "runs" / "bench" / spec.name,
                             printer=lambda line: print(line, flush=True))
    return outcome.results, outcome.run_id


def train_untracked(spec, args):
    from cnntree import CnnTreeClassifier
    from cnntree.data import load_for_spec
    from cnntree.evaluation.metrics import evaluate
    spec = overridden(spec, args)
    data, splits = load_for_spec(spec)
    work = ROOT / "runs" / "bench" / spec.name
    shutil.rmtree(work, ignore_errors=True)  # a fresh training, never a resumed one
    clf = CnnTreeClassifier(spec, work_dir=work, verbose=1)
    clf.fit(data.images[splits.train], data.labels[splits.train],
            (data.images[splits.validation], data.labels[splits.validation]))
    return {split: evaluate(clf, clf.network_outputs(data.images[i]), data.labels[i]) for split, i in splits.tests.items()}, None


def main():
    parser = argparse.ArgumentParser(description="accuracy benchmark on the full FER2013")
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--data", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, help="processes augmenting batches (default: the specs')")
    parser.add_argument("--json", default=str(ROOT / "bench" / "accuracy.json"))
    parser.add_argument("--markdown", default=str(ROOT / "docs" / "results.md"))
    parser.add_argument("--no-mlflow", action="store_true",
                        help="train and evaluate without MLflow (a GPU machine without it, say)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from cnntree.spec import load_spec

    out = Path(args.json)
    rows = json.loads(out.read_text()) if out.exists() else []
    machine = f"{platform.machine()} {os.cpu_count()} cores, Keras {keras.__version__} on {keras.backend.backend()}"
    for path in args.specs:
        spec = load_spec(path)
        started = time.time()
        results, run_id = (train_untracked if args.no_mlflow else train_tracked)(spec, args)
        modes = {}
        for mode in results["PrivateTest"]["modes"]:
            modes[mode] = {"public_accuracy": results["PublicTest"]["modes"][mode]["accuracy"],
                           "private_accuracy": results["PrivateTest"]["modes"][mode]["accuracy"],
                           "private_macro_f1": results["PrivateTest"]["modes"][mode]["macro_f1"]}
        row = {"spec": spec.name, "kind": spec.kind, "epochs": args.epochs, "seed": args.seed,
               "wall_s": time.time() - started, "modes": modes, "machine": machine, "run_id": run_id,
               "command": " ".join(["python", "bench/accuracy.py", "--data", args.data, "--epochs", str(args.epochs),
                                    *(["--workers", str(args.workers)] if args.workers else []), path])}
        rows.append(row)
        out.write_text(json.dumps(rows, indent=2) + "\n")
        print(table([row]), flush=True)
    markdown = Path(args.markdown)
    text = markdown.read_text() if markdown.exists() else f"# Results\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN)
    markdown.write_text(head + BEGIN + "\n" + table(rows) + "\n" + END + rest.split(END, 1)[1])
    print(table(rows))


if __name__ == "__main__":
    sys.exit(main())
