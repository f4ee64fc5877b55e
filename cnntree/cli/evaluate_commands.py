"""Commands that measure a trained model: evaluate (a split, another data set, hierarchical
answers) and calibrate (probabilities, or the answers' thresholds).

The library is imported inside each command's functions: a command's mistakes are answered
before Keras and MLflow load (start-up time)."""

from __future__ import annotations

from ..compose.calibration import CALIBRATIONS
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
    def run(args) -> dict:
        from ..workflows.evaluate import evaluate_model

        found = evaluate_model(args.model_dir, args.data, args.split, args.label_map, args.test_time, args.skip_bad,
                               args.report, args.explain or 0, args.coverage, chosen_hierarchy(args))
        data_line(found["data"], found["split"], found["faces"])
        return found

    @staticmethod
    def text(found) -> str:
        from ..evaluation.reports import evaluation_table

        lines = []
        alignment = found["result"].get("alignment")
        if alignment:
            mapped = alignment["mapped"]
            lines.append(f"{found['data']}: {found['faces']} images of {len(mapped)} classes mapped to the model's "
                         f"({', '.join(f'{a}->{b}' if a != b else a for a, b in mapped.items())})")
            if alignment["excluded"]:
                lines.append(f"excluded (no model class): {', '.join(alignment['excluded'])}")
            if alignment["missing"]:
                lines.append(f"model classes this data never shows: {', '.join(alignment['missing'])}")
        lines.append(evaluation_table([(found["split"], found["result"])]))
        if found.get("hierarchical"):
            lines.append(hierarchical_table(found["hierarchical"]))
        if found["report"]:
            lines.append(f"report: {found['report']} ({len(found['files'])} files), logged to MLflow experiment evaluate")
        return "\n".join(lines)


class Calibrate:
    @staticmethod
    def add_arguments(p):
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
    def run(args) -> dict:
        from ..workflows.refit import calibrate_model

        found = calibrate_model(args.model_dir, args.data, args.method, args.out, args.coverage, args.split,
                                chosen_hierarchy(args))
        what = (f"{found['split']} (conformal calibration of hierarchy {found['hierarchy']})" if args.coverage else
                "fitted on Validation, measured on " + ", ".join(found["splits"]))
        data_line(found["data"], what, found["faces"])
        return found

    @staticmethod
    def text(found) -> str:
        return thresholds_table(found) if "thresholds" in found else calibration_table(found)


def calibration_table(found: dict) -> str:
    """``calibrate``: each split's accuracy, ECE, NLL and Brier score before and after, and what
    each network fitted."""
    before, after = found["before"], found["after"]
    lines = [f"{'split':12s} {'calibration':22s} {'accuracy':>9s} {'ECE':>7s} {'NLL':>7s} {'Brier':>7s}"]
    for split in found["splits"]:
        for label, state in ((f"{'/'.join(sorted(set(before['methods'].values())))} (before)", before),
                             (found["method"], after)):
            m = state["metrics"][split]
            lines.append(f"{split:12s} {label:22s} {m['accuracy']:9.4f} " +
                         " ".join(f"{m[k]:7.4f}" if k in m else f"{'-':>7s}" for k in ("ece", "nll", "brier")))
    for node_id, record in found["fitted"].items():
        state = ", ".join(f"{k} {v:.3f}" for k, v in record["state"].items() if isinstance(v, float))
        lines.append(f"network {node_id}: {record['method']}" + (f" ({state})" if state else "")
                     + ("  warning: the fit ended at a bound of its parameters (too few or uninformative validation "
                        "faces); the calibration is not a real optimum" if node_id in found["at_bound"] else ""))
    return "\n".join([*lines, f"wrote {found['out']}"])


def thresholds_table(found: dict) -> str:
    """``calibrate --coverage``: the thresholds of the model's hierarchy and of the abstention baseline."""
    lines = [f"{'hierarchy':16s} {'coverage':>8s} {'threshold':>10s} {'faces':>6s} {'specificity on these faces':>27s}"]
    lines += [f"{row['hierarchy'][:16]:16s} {row['coverage']:8g} {row['threshold']:10.4f} {row['faces']:6d} "
              f"{row['specificity_here']:27.4f}" for row in found["thresholds"]]
    return "\n".join([*lines, f"wrote {found['out']}"])


COMMANDS = {"evaluate": Evaluate, "calibrate": Calibrate}
