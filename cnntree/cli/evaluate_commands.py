"""Commands that measure a trained model: evaluate (a split, another data set, hierarchical
answers) and calibrate (probabilities, or the answers' thresholds)."""

from __future__ import annotations

import json
from pathlib import Path

from ..models import load_model
from .model_args import chosen_hierarchy, model_argument, test_time_argument
from .options import SPLIT_NAME, add_coverage, add_json, count, data_line


def hierarchical_table(found: dict) -> str:
    """``evaluate --coverage``: each hierarchy's answers at the calibrated threshold."""
    lines = [f"{'hierarchy':16s} {'coverage':>9s} {'target':>7s} {'specificity':>12s} {'hF1':>6s} {'severity':>9s} "
             f"{'hAURC':>7s} {'classes':>8s} {'any':>6s}"]
    for name, m in found.items():
        lines.append(f"{name[:16]:16s} {m['coverage']:9.4f} {m['target']:7.2f} {m['specificity']:12.4f} "
                     f"{m['h_f1']:6.3f} {m['mistake_severity']:9.3f} {m['haurc']:7.4f} {m['leaf_answers']:8.3f} "
                     f"{m['root_answers']:6.3f}")
    return "\n".join(lines) + "\n(coverage: share of answers holding the true emotion; specificity: 1 - log2(classes in " \
        "the answer) / log2(all classes), mean; classes / any: share of answers that are one class / any emotion)"


class Evaluate:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "evaluate", "evaluate a trained classifier on a test split or another data set"

    @staticmethod
    def add_arguments(p):
        model_argument(p)
        p.add_argument("--data", metavar="PATH", help="another data set (e.g. a CK+48 class folder); its classes are "
                       "matched to the model's by name and --label-map (default: the data the model was trained on)")
        p.add_argument("--label-map", metavar="T=M,...", help="rename target classes to model classes, e.g. anger=angry")
        p.add_argument("--split", default="PrivateTest", type=SPLIT_NAME, help="the test split (data without it: "
                       "every image)")
        p.add_argument("--skip-bad", action="store_true", help="skip bad rows or image files and report how many")
        p.add_argument("--report", metavar="DIR", help="write the report there (JSON, text, confusion matrices, "
                       "reliability diagram) and log it as an MLflow run (experiment evaluate)")
        p.add_argument("--explain", type=count(1, 100), metavar="N", help="add a grid of the N most confident "
                       "mistakes per class with their Grad-CAM maps to the report (default --report: "
                       "runs/evaluate/<model>-<split>)")
        test_time_argument(p)
        add_coverage(p)
        add_json(p)

    @staticmethod
    def run(args) -> int:
        from ..data.labels import parse_label_map
        from ..evaluation.metrics import evaluate_split, headline
        from ..evaluation.reports import evaluation_table
        from ..files import check_output_file
        from ..spec import with_overrides

        clf = load_model(args.model_dir, args.test_time)
        if args.explain:
            clf.keras_models()  # explanations need the Keras networks: fail before evaluating
        report = Path(args.report) if args.report else (
            Path("runs", "evaluate", f"{clf.spec_.name}-{args.split}") if args.explain else None)
        if report:
            check_output_file(report / "report.json", "--report")
        spec = with_overrides(clf.spec_, skip_bad=args.skip_bad or None)
        out = evaluate_split(clf, spec, args.data, args.split, parse_label_map(args.label_map),
                             explain=args.explain or 0, coverage=args.coverage, hierarchy=chosen_hierarchy(args))
        split, result = out["split"], out["result"]
        data_line(out["data"], split, out["faces"])
        if report:
            from ..tracking.evaluations import log_evaluation  # MLflow loads only for a report

            out["files"] = [str(f) for f in log_evaluation(args.model_dir, clf, out, report)]
        if args.json:
            print(json.dumps({"data": out["data"], "split": split, "faces": out["faces"],
                              "metrics": headline(result, split), "result": result,
                              "hierarchical": out.get("hierarchical"), "files": out.get("files", [])}, indent=2))
            return 0
        alignment = result.get("alignment")
        if alignment:
            mapped = alignment["mapped"]
            print(f"{args.data}: {out['faces']} images of {len(mapped)} classes mapped to the model's "
                  f"({', '.join(f'{a}->{b}' if a != b else a for a, b in mapped.items())})")
            if alignment["excluded"]:
                print(f"excluded (no model class): {', '.join(alignment['excluded'])}")
            if alignment["missing"]:
                print(f"model classes this data never shows: {', '.join(alignment['missing'])}")
        print(evaluation_table([(split, result)]))
        if out.get("hierarchical"):
            print(hierarchical_table(out["hierarchical"]))
        if report:
            print(f"report: {report} ({len(out['files'])} files), logged to MLflow experiment evaluate")
        return 0


class Calibrate:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = ("calibrate", "refit a trained classifier's calibration on its validation faces, or the thresholds of "
                  "its hierarchical answers (--coverage); no retraining")

    @staticmethod
    def add_arguments(p):
        from ..compose.calibration import CALIBRATIONS

        model_argument(p)
        p.add_argument("--method", choices=list(CALIBRATIONS), default="temperature",
                       help="for every network: temperature (default), vector, isotonic, prior or none")
        p.add_argument("--data", metavar="PATH", help="the data the model was trained on, if it moved (its "
                       "validation split is carved from Training as in training)")
        p.add_argument("--out", metavar="DIR", help="write the recalibrated model here (default: in place; a "
                       "shipped model needs --out)")
        p.add_argument("--split", default="PublicTest", type=SPLIT_NAME, help="with --coverage: the held-out faces "
                       "the threshold is calibrated on (default PublicTest: neither trained nor selected on; the "
                       "probabilities' own calibration uses Validation)")
        add_coverage(p, calibrating=True)
        add_json(p)

    @staticmethod
    def run(args) -> int:
        from ..data import load_for_spec
        from ..estimator.storage import check_model_folder
        from ..pretrained import resolve
        from ..spec import with_overrides
        from ..workflows.refit import refit_calibration

        source = resolve(args.model_dir)
        out = Path(args.out or source)
        check_model_folder(out, reads=[source], in_place=True)
        clf = load_model(source)
        data, splits = load_for_spec(with_overrides(clf.spec_, data=args.data))
        if args.coverage:
            return calibrate_answers(args, clf, data, splits, source, out)
        data_line(data.source, "fitted on Validation, measured on " + ", ".join(["Validation", *splits.tests]),
                  len(splits.validation))
        found = refit_calibration(clf, data, splits, args.method, source, out)
        before, after = found["before"], found["after"]
        if args.json:
            print(json.dumps({"data": data.source, "split": "Validation", "faces": int(len(splits.validation)),
                              **{k: found[k] for k in ("before", "after", "fitted", "at_bound")},
                              "out": str(found["out"])}, indent=2))
            return 0
        print(f"{'split':12s} {'calibration':22s} {'accuracy':>9s} {'ECE':>7s} {'NLL':>7s} {'Brier':>7s}")
        for split in found["splits"]:
            for label, state in ((f"{'/'.join(sorted(set(before['methods'].values())))} (before)", before),
                                 (args.method, after)):
                m = state["metrics"][split]
                print(f"{split:12s} {label:22s} {m['accuracy']:9.4f} " +
                      " ".join(f"{m[k]:7.4f}" if k in m else f"{'-':>7s}" for k in ("ece", "nll", "brier")))
        for node_id, record in found["fitted"].items():
            state = ", ".join(f"{k} {v:.3f}" for k, v in record["state"].items() if isinstance(v, float))
            print(f"network {node_id}: {record['method']}" + (f" ({state})" if state else "")
                  + ("  warning: the fit ended at a bound of its parameters (too few or uninformative validation "
                     "faces); the calibration is not a real optimum" if node_id in found["at_bound"] else ""))
        print(f"wrote {found['out']}")
        return 0


def calibrate_answers(args, clf, data, splits, source, out) -> int:
    """``calibrate --coverage``: the thresholds of the model's hierarchy and of the abstention
    baseline on ``--split`` (``workflows.refit.calibrate_thresholds``), printed."""
    from ..compose import answers
    from ..errors import CnnTreeError
    from ..workflows.refit import calibrate_thresholds

    index = splits.validation if args.split == "Validation" else splits.tests.get(args.split)
    if index is None:
        raise CnnTreeError(f"--split: no split \"{args.split}\"; use Validation or one of {', '.join(splits.tests)}")
    hierarchy = answers.hierarchy_for(clf, chosen_hierarchy(args))
    data_line(data.source, f"{args.split} (conformal calibration of hierarchy {hierarchy.name})", len(index))
    found = calibrate_thresholds(clf, data, index, args.split, hierarchy, args.coverage, source, out)
    if args.json:
        print(json.dumps({"data": data.source, "split": args.split, "faces": int(len(index)),
                          "thresholds": found["thresholds"], "out": str(found["out"])}, indent=2))
        return 0
    print(f"{'hierarchy':16s} {'coverage':>8s} {'threshold':>10s} {'faces':>6s} {'specificity on these faces':>27s}")
    for row in found["thresholds"]:
        print(f"{row['hierarchy'][:16]:16s} {row['coverage']:8g} {row['threshold']:10.4f} {row['faces']:6d} "
              f"{row['specificity_here']:27.4f}")
    print(f"wrote {found['out'] / answers.FILE}")
    return 0


COMMANDS = [Evaluate, Calibrate]
