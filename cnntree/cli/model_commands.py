"""Commands that build on a trained model: suggest (a hierarchy), transfer (to another data
set), suggest-labels, and models (what ships)."""

from __future__ import annotations

import json
from pathlib import Path

from ..models import load_model
from .model_args import model_argument
from .options import EPOCHS, SEED_VALUE, add_json, count, data_line, info


class Suggest:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "suggest", "propose a class hierarchy from a flat classifier's confusions"

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
    def run(args) -> int:
        from ..estimator.storage import load
        from ..files import check_output_file
        from ..hierarchy.suggest import suggest_spec
        from ..models import lasting, model_dir
        from ..spec import text_tree, with_overrides

        check_output_file(args.out, "--out")
        check_output_file(Path(args.out).with_suffix(".png"), "--out")
        folder = model_dir(args.model)
        clf = load(folder)
        found = suggest_spec(clf, with_overrides(clf.spec_, data=args.data), args.split, args.method,
                             args.max_children, args.out, init_from=lasting(args.model, folder) if args.init else None)
        data_line(found["data"], found["split"], found["faces"])
        print("most confused pairs: " + ", ".join(f"{a}-{b} {v:.3f}" for v, a, b in found["pairs"]))
        print(text_tree(found["spec"]))
        print(f"wrote {' and '.join(map(str, found['files']))}")
        return 0


class Transfer:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "transfer", "retrain heads on another data set, with K-fold cross-validation"

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
    def run(args) -> int:
        from ..data import load_faces
        from ..data.labels import parse_label_map
        from ..tracking.runs import ui_hint
        from ..tracking.store import tracking_uri
        from ..workflows.transfer import run_transfer

        label_map = parse_label_map(args.label_map)
        data = load_faces(args.data, skip_bad=args.skip_bad)
        result = run_transfer(args.model_dir, data, label_map, args.mode, args.folds, args.epochs, args.group_regex,
                              args.seed, args.experiment, args.out, printer=info)
        if args.json:
            print(json.dumps(result, indent=2))
            return 0
        for row in result["folds"]:
            print(f"fold {row['fold']}: train {row['train']:5d}  test {row['test']:5d}  accuracy {row['accuracy']:.4f}  "
                  f"macro-F1 {row['macro_f1']:.4f}" + (f"  subjects {','.join(row['subjects'])}" if "subjects" in row else ""))
        print(f"{args.mode}: accuracy {result['accuracy_mean']:.4f} +- {result['accuracy_std']:.4f}, macro-F1 "
              f"{result['macro_f1_mean']:.4f} +- {result['macro_f1_std']:.4f} over {args.folds} "
              f"{'subject-independent ' if result['grouped'] else ''}folds")
        print(f"MLflow run {result['run_id']} in {tracking_uri()} (experiment {args.experiment})")
        print(ui_hint(result["experiment_id"]))
        if args.out:
            print(f"classifier retrained on all folds saved to {result['out']}")
        return 0


class SuggestLabels:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "suggest-labels", "which model class each target class resembles (nothing applied)"

    @staticmethod
    def add_arguments(p):
        model_argument(p)
        p.add_argument("--data", required=True, metavar="FOLDER", help="the target data set")
        p.add_argument("--source-data", metavar="PATH", help="the model's training data for the mean faces "
                       "(default: the data the model was trained on)")
        p.add_argument("--skip-bad", action="store_true", help="skip bad image files and report how many")
        add_json(p)

    @staticmethod
    def run(args) -> int:
        from ..data import load_faces, load_for_spec
        from ..estimator.transfer import suggest_labels
        from ..spec import with_overrides

        target = load_faces(args.data, skip_bad=args.skip_bad)
        clf = load_model(args.model_dir)
        source, _ = load_for_spec(with_overrides(clf.spec_, data=args.source_data))
        rows = suggest_labels(clf, target, source)
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"{'target class':16s} {'images':>6s}  {'model assigns':>18s}  {'nearest mean face':>22s}  "
              f"{'nearest histogram':>22s}")
        for r in rows:
            print(f"{r['target']:16s} {r['images']:6d}  {r['model']:>11s} ({r['model_share']:.2f})  "
                  f"{r['pixels']:>13s} ({r['pixels_distance']:.3f})  {r['histogram']:>13s} ({r['histogram_distance']:.3f})")
        print("nothing is applied: pass the mapping you choose as --label-map target=model,...")
        return 0


class Models:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help, needs_backend = "models", "the models that ship with cnntree: kind, size, data, test figures", False

    @staticmethod
    def add_arguments(p):
        add_json(p)

    @staticmethod
    def run(args) -> int:
        from ..pretrained import cards, public_note

        found = cards()
        if args.json:
            print(json.dumps(found, indent=2))
            return 0
        for card in found:
            parameters = card.get("parameters")
            print(f"{card['name']}: {card.get('kind', '?')} {card.get('spec', '')}, "
                  f"{f'{parameters:,}' if isinstance(parameters, int) else '?'} parameters, "
                  f"{card['bytes'] / 1e6:.2f} MB, trained on {card.get('data', '?')} "
                  f"({card.get('epochs_trained', '?')} epochs)")
            if "card_error" in card:
                print(f"  card damaged: {card['card_error']}")
            else:
                print(f"  PublicTest {card['public_accuracy']:.4f}{public_note(card)}, PrivateTest {card['private_accuracy']:.4f} "
                      f"(macro F1 {card['private_macro_f1']:.4f})")
                print("  PrivateTest recall: " + ", ".join(f"{c} {r:.2f}" for c, r in card["private_recall"].items()))
            print(f"  command: {card.get('command', '?')}")
            print(f"  card: {Path(card['path']) / 'MODEL_CARD.md'}")
        if not found:
            print("(no model ships with this installation)")
        return 0




COMMANDS = [Suggest, Transfer, SuggestLabels, Models]
