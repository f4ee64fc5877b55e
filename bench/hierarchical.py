"""Benchmark: hierarchical answers (conformal climbing) of a trained model on FER2013, per
hierarchy and against the flat network that abstains. Thresholds are calibrated on one test split
(PublicTest) and measured on the other (PrivateTest); optionally also on a class-folder data set
(CK+ layout) with the FER2013 thresholds, to see whether the guarantee holds off the calibration
distribution. Prints a table, writes JSON, a picture of the curves, and the model's record of
thresholds (``climbing.json``) for shipping.

    python bench/hierarchical.py --data fer2013.csv.gz --model default \\
        --hierarchy trees/moravcik.json trees/induced_default.json trees/suggested_default.json \\
        [--ckplus FOLDER --label-map anger=angry,happiness=happy,sadness=sad] [--record climbing.json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from cnntree import load_model
from cnntree.compose import answers
from cnntree.compose.climbing import Hierarchy, conformal_threshold, hierarchical_metrics, risk_specificity_curve
from cnntree.data import load_faces, load_for_spec
from cnntree.data.labels import align, parse_label_map
from cnntree.plots import draw_answer_curves
from cnntree.spec import load_spec, with_overrides

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="default")
    parser.add_argument("--hierarchy", nargs="+", default=[str(ROOT / "trees" / "moravcik.json")])
    parser.add_argument("--calibrate-on", default="PublicTest")
    parser.add_argument("--test-on", default="PrivateTest")
    parser.add_argument("--alphas", default="0.05,0.1,0.2")
    parser.add_argument("--ckplus", help="a class-folder data set measured with the FER2013 thresholds")
    parser.add_argument("--label-map", default="anger=angry,happiness=happy,sadness=sad")
    parser.add_argument("--record", help="write the model's climbing.json (every hierarchy, every alpha) here")
    parser.add_argument("--json", default=str(ROOT / "bench" / "hierarchical.json"))
    parser.add_argument("--picture", default=str(ROOT / "docs" / "hierarchical_answers.png"))
    args = parser.parse_args()
    alphas = [float(a) for a in args.alphas.split(",")]
    started = time.perf_counter()
    clf = load_model(args.model)
    data, splits = load_for_spec(with_overrides(clf.spec_, data=args.data))
    calibration, test = splits.tests[args.calibrate_on], splits.tests[args.test_on]
    proba_cal, proba_test = clf.predict_proba(data.images[calibration]), clf.predict_proba(data.images[test])
    labels_cal, labels_test = data.labels[calibration], data.labels[test]
    hierarchies = [Hierarchy.from_spec(load_spec(path), clf.spec_.classes) for path in args.hierarchy]
    hierarchies.append(Hierarchy.flat(clf.spec_.classes))
    target = None
    if args.ckplus:
        target, alignment = align(load_faces(args.ckplus), clf.spec_.classes, parse_label_map(args.label_map))
        proba_target = clf.predict_proba(target.images)
    rows, curves, marks, record = [], {}, {}, None
    for hierarchy in hierarchies:
        scores = hierarchy.scores(proba_cal, labels_cal)
        curve = risk_specificity_curve(hierarchy, proba_test, labels_test)
        curves[hierarchy.name] = curve
        for alpha in alphas:
            threshold = conformal_threshold(scores, alpha)
            m = hierarchical_metrics(hierarchy, proba_test, labels_test, threshold)
            row = {"hierarchy": hierarchy.name, "alpha": alpha, "target": 1 - alpha, "threshold": threshold,
                   "coverage": m["coverage"], "sampling_error": math.sqrt(alpha * (1 - alpha) / len(labels_test)),
                   "specificity": m["specificity"], "h_f1": m["h_f1"], "mistake_severity": m["mistake_severity"],
                   "one_class": m["leaf_answers"], "any": m["root_answers"], "haurc": curve["haurc"],
                   "coverage_per_class": m["coverage_per_class"]}
            if target is not None:
                t = hierarchical_metrics(hierarchy, proba_target, target.labels, threshold)
                row.update(ckplus_coverage=t["coverage"], ckplus_specificity=t["specificity"],
                           ckplus_faces=int(len(target.labels)))
            rows.append(row)
            if alpha == 0.1:
                marks[hierarchy.name] = (m["specificity"], m["coverage"])
        record = answers.calibrate(record, hierarchy, proba_cal, labels_cal, [1 - a for a in alphas],
                                   {"split": args.calibrate_on, "data": Path(data.source).name})
    print(f"{'hierarchy':20s} {'target':>6s} {'coverage':>9s} {'+-':>6s} {'specific.':>9s} {'hF1':>6s} "
          f"{'severity':>8s} {'1 class':>7s} {'any':>6s} {'hAURC':>7s}" + (f" {'CK+ cov.':>8s} {'CK+ spec.':>9s}"
                                                                            if target is not None else ""))
    for r in rows:
        print(f"{r['hierarchy'][:20]:20s} {r['target']:6.2f} {r['coverage']:9.4f} {r['sampling_error']:6.4f} "
              f"{r['specificity']:9.4f} {r['h_f1']:6.3f} {r['mistake_severity']:8.3f} {r['one_class']:7.3f} "
              f"{r['any']:6.3f} {r['haurc']:7.4f}"
              + (f" {r['ckplus_coverage']:8.4f} {r['ckplus_specificity']:9.4f}" if target is not None else ""))
    accuracy = float((proba_test.argmax(1) == labels_test).mean())
    draw_answer_curves(curves, args.picture, f"{args.model} on FER2013 {args.test_on} (top-1 {accuracy:.3f}); "
                       f"dots: coverage 0.9 calibrated on {args.calibrate_on}", marks)
    if args.record:
        best = max((r for r in rows if r["alpha"] == 0.1 and r["hierarchy"] != "abstain"),
                   key=lambda r: r["specificity"])
        record["default"] = best["hierarchy"]
        Path(args.record).write_text(json.dumps(record, indent=2) + "\n")
    named = {k: Path(v).name if k in ("data", "ckplus", "record") else v for k, v in vars(args).items()}
    result = {"command": "python bench/hierarchical.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(v) if isinstance(v, list) else v}" for k, v in named.items()
        if v and k not in ("json", "picture")),
        "model": args.model, "top1_accuracy": accuracy, "faces": {"calibration": int(len(labels_cal)),
                                                                  "test": int(len(labels_test))},
        "rows": rows, "curves": curves, "seconds": round(time.perf_counter() - started, 1)}
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"top-1 accuracy {accuracy:.4f}; wrote {args.json}, {args.picture}")


if __name__ == "__main__":
    main()
