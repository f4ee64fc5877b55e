"""Commands that build on a trained model: suggest (a hierarchy), transfer (to another data
set), suggest-labels.

The library is imported inside each command's functions: a command's mistakes are answered
before Keras and MLflow load (start-up time)."""

from __future__ import annotations

from pathlib import Path

from ..data import load_faces, load_for_spec
from ..data.labels import parse_label_map
from ..files import check_output_file
from ..hierarchy.suggest import suggest_spec
from ..models import lasting, load_model, model_dir
from ..spec import text_tree, with_overrides
from .model_args import model_argument
from .options import EPOCHS, SEED_VALUE, add_json, count, data_line, info


class Suggest:
    @staticmethod
    def add_arguments(p):
        p.add_argument("model", metavar="MODEL_DIR|RUN_ID", help="a flat classifier's folder, or the id of the "
                       "MLflow run that trained it")
        p.add_argument("--data", metavar="PATH", help="data instead of the model's own")
        p.add_argument("--split", default="Validation", help="where the confusions are counted (default Validation)")
        p.add_argument("--method", choices=("agglomerative", "spectral", "weights"), default="agglomerative",
                       help="bottom-up merging of the most confused classes, top-down spectral splits, or "
                       "(NBDT) bottom-up merging of the classes whose output-layer weights are most alike")
        p.add_argument("--init", action="store_true", help="the written spec starts every node from this model "
                       "(init.from: warm start)")
        p.add_argument("--max-children", type=count(2, 16), default=2, help="children per node (2-16, default 2)")
        p.add_argument("--out", required=True, metavar="trees/NAME.json", help="the spec to write (a PNG beside it)")

    @staticmethod
    def run(args) -> dict:
        from ..estimator.storage import load

        check_output_file(args.out, "--out")
        check_output_file(Path(args.out).with_suffix(".png"), "--out")
        folder = model_dir(args.model)
        clf = load(folder)
        found = suggest_spec(clf, with_overrides(clf.spec_, data=args.data), args.split, args.method,
                             args.max_children, args.out, init_from=lasting(args.model, folder) if args.init else None)
        data_line(found["data"], found["split"], found["faces"])
        return {**found, "spec": text_tree(found["spec"]), "files": [str(f) for f in found["files"]]}

    @staticmethod
    def text(found) -> str:
        return "\n".join(["most confused pairs: " + ", ".join(f"{a}-{b} {v:.3f}" for v, a, b in found["pairs"]),
                          found["spec"], f"wrote {' and '.join(found['files'])}"])


class Transfer:
    @staticmethod
    def add_arguments(p):
        model_argument(p)
        p.add_argument("--data", required=True, metavar="FOLDER", help="the target data set (e.g. CK+ class folders)")
        p.add_argument("--label-map", metavar="T=M,...", help="rename (or merge) target classes, e.g. anger=angry")
        p.add_argument("--mode", choices=("head", "last_dense", "full"), default="head",
                       help="head: output layer only; last_dense: and the layer before; full: all, at lr x0.1")
        p.add_argument("--folds", type=count(2, 100), default=5, help="cross-validation folds (2-100, default 5)")
        p.add_argument("--group-regex", metavar="REGEX", help="subject id from file names, e.g. '^(S\\d+)_': "
                       "no subject in two folds")
        p.add_argument("--epochs", type=EPOCHS, default=10, help="retraining epochs per fold (1-10000, default 10)")
        p.add_argument("--seed", type=SEED_VALUE, default=0, help="seed of the folds and the retraining (default 0)")
        p.add_argument("--out", metavar="DIR", help="keep the classifier retrained on all folds")
        p.add_argument("--experiment", default="transfer", help="MLflow experiment (default: transfer)")
        p.add_argument("--skip-bad", action="store_true", help="skip bad image files and report how many")
        add_json(p)

    @staticmethod
    def run(args) -> dict:
        from ..workflows.transfer import run_transfer

        data = load_faces(args.data, skip_bad=args.skip_bad)
        return run_transfer(args.model_dir, data, parse_label_map(args.label_map), args.mode, args.folds, args.epochs,
                            args.group_regex, args.seed, args.experiment, args.out, printer=info)

    @staticmethod
    def text(result) -> str:
        from ..tracking.runs import ui_hint

        lines = [f"fold {row['fold']}: train {row['train']:5d}  test {row['test']:5d}  accuracy {row['accuracy']:.4f}  "
                 f"macro-F1 {row['macro_f1']:.4f}" + (f"  subjects {','.join(row['subjects'])}" if "subjects" in row else "")
                 for row in result["folds"]]
        lines += [f"{result['mode']}: accuracy {result['accuracy_mean']:.4f} +- {result['accuracy_std']:.4f}, macro-F1 "
                  f"{result['macro_f1_mean']:.4f} +- {result['macro_f1_std']:.4f} over {len(result['folds'])} "
                  f"{'subject-independent ' if result['grouped'] else ''}folds",
                  f"MLflow run {result['run_id']} in {result['tracking_uri']} (experiment {result['experiment']})",
                  ui_hint(result["experiment_id"])]
        if result.get("out"):
            lines.append(f"classifier retrained on all folds saved to {result['out']}")
        return "\n".join(lines)


class SuggestLabels:
    @staticmethod
    def add_arguments(p):
        model_argument(p)
        p.add_argument("--data", required=True, metavar="FOLDER", help="the target data set")
        p.add_argument("--source-data", metavar="PATH", help="the model's training data for the mean faces "
                       "(default: the data the model was trained on)")
        p.add_argument("--skip-bad", action="store_true", help="skip bad image files and report how many")
        add_json(p)

    @staticmethod
    def run(args) -> list:
        from ..estimator.transfer import suggest_labels

        target = load_faces(args.data, skip_bad=args.skip_bad)
        clf = load_model(args.model_dir)
        source, _ = load_for_spec(with_overrides(clf.spec_, data=args.source_data))
        return suggest_labels(clf, target, source)

    @staticmethod
    def text(rows) -> str:
        lines = [f"{'target class':16s} {'images':>6s}  {'model assigns':>18s}  {'nearest mean face':>22s}  "
                 f"{'nearest histogram':>22s}"]
        lines += [f"{r['target']:16s} {r['images']:6d}  {r['model']:>11s} ({r['model_share']:.2f})  "
                  f"{r['pixels']:>13s} ({r['pixels_distance']:.3f})  {r['histogram']:>13s} ({r['histogram_distance']:.3f})"
                  for r in rows]
        return "\n".join([*lines, "nothing is applied: pass the mapping you choose as --label-map target=model,..."])


COMMANDS = {"suggest": Suggest, "transfer": Transfer, "suggest-labels": SuggestLabels}
