"""Commands on a trained classifier: evaluate, predict, export, suggest, transfer, suggest-labels."""

from __future__ import annotations

import json
from pathlib import Path

from .options import EPOCHS, SEED_VALUE, add_json, count, info


def model_argument(p, optional: bool = False) -> None:
    """The model positional argument (a folder or a shipped model's name)."""
    help_text = ("a model directory (cnntree train --out, cnntree export --out) or a shipped model's name "
                 "(cnntree models)")
    if optional:
        p.add_argument("model_dir", nargs="?", default="default", help=help_text + "; default: the shipped default")
    else:
        p.add_argument("model_dir", help=help_text + ", e.g. default")


def load_model(path):
    """The classifier in a model folder, or a shipped one by name."""
    from ..compose.storage import load

    return load(path)


class Evaluate:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "evaluate", "evaluate a trained classifier on a test split or another data set"

    @staticmethod
    def add_arguments(p):
        model_argument(p)
        p.add_argument("--data", metavar="PATH", help="another data set (e.g. a CK+48 class folder); its classes are "
                       "matched to the model's by name and --label-map (default: the data the model was trained on)")
        p.add_argument("--label-map", metavar="T=M,...", help="rename target classes to model classes, e.g. anger=angry")
        p.add_argument("--split", default="PrivateTest", help="the test split (data without it: every image)")
        p.add_argument("--skip-bad", action="store_true", help="skip bad rows or image files and report how many")
        add_json(p)

    @staticmethod
    def run(args) -> int:
        from ..compose.metrics import evaluate_split, headline
        from ..compose.reports import evaluation_table
        from ..data.labels import parse_label_map
        from ..spec import with_overrides

        clf = load_model(args.model_dir)
        spec = with_overrides(clf.spec, skip_bad=args.skip_bad or None)
        out = evaluate_split(clf, spec, args.data, args.split, parse_label_map(args.label_map))
        split, result = out["split"], out["result"]
        if args.json:
            print(json.dumps({"split": split, "metrics": headline(result, split), "result": result}, indent=2))
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
        return 0


class Predict:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "predict", "emotion of face images (each resized to grey 48x48)"

    @staticmethod
    def add_arguments(p):
        p.add_argument("items", nargs="+", metavar="[MODEL] IMAGE", help="a model directory or shipped model's "
                       "name (default: the shipped default), then image files, one face each")
        add_json(p)

    @staticmethod
    def run(args) -> int:
        import numpy as np

        from ..data import IMAGE_SUFFIXES, read_face
        from ..errors import CnnTreeError
        from ..pretrained import names

        first = Path(args.items[0])
        looks_like_a_folder = not first.exists() and first.suffix.lower() not in IMAGE_SUFFIXES and len(args.items) > 1
        is_model = args.items[0] in names() or first.is_dir() or looks_like_a_folder
        model, images = (args.items[0], args.items[1:]) if is_model else ("default", args.items)
        if not images:
            raise CnnTreeError(f"{args.items[0]}: a model; give the face images to label after it")
        faces = np.stack([read_face(path)[0] for path in images])  # bad files fail before the model loads
        clf = load_model(model)
        classes = clf.spec.classes
        rows = [{"image": str(p), "label": classes[int(q.argmax())], "probabilities": dict(zip(classes, map(float, q)))}
                for p, q in zip(images, clf.predict_proba(faces))]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for row in rows:
                print(f"{row['image']}: {row['label']} ({row['probabilities'][row['label']]:.2f})")
        return 0


class Export:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "export", "write a trained classifier as ONNX, TFLite or SavedModel networks"

    @staticmethod
    def add_arguments(p):
        model_argument(p)
        p.add_argument("--format", required=True, choices=("onnx", "tflite", "savedmodel"), help="the export format")
        p.add_argument("--out", required=True, metavar="DIR", help="the export folder (new, or one cnntree wrote)")

    @staticmethod
    def run(args) -> int:
        from ..compose.storage import MODEL_KINDS, export
        from ..files import check_output_folder

        check_output_folder(args.out, MODEL_KINDS)
        clf = load_model(args.model_dir)
        out = export(clf, args.out, args.format)
        print(f"wrote {out} ({args.format}: {len(clf.spec.nodes)} network(s) with the routing metadata; "
              f"run it with cnntree mirror {out})")
        return 0


class Suggest:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "suggest", "propose a class hierarchy from a flat classifier's confusions"

    @staticmethod
    def add_arguments(p):
        p.add_argument("model", metavar="MODEL_DIR|RUN_ID", help="a flat classifier's folder, or the id of the "
                       "MLflow run that trained it")
        p.add_argument("--data", metavar="PATH", help="data instead of the model's own")
        p.add_argument("--split", default="Validation", help="where the confusions are counted (default Validation)")
        p.add_argument("--method", choices=("agglomerative", "spectral"), default="agglomerative",
                       help="bottom-up merging of the most confused classes, or top-down spectral splits")
        p.add_argument("--max-children", type=count(2, 16), default=2, help="children per node (2-16, default 2)")
        p.add_argument("--out", required=True, metavar="trees/NAME.json", help="the spec to write (a PNG beside it)")

    @staticmethod
    def run(args) -> int:
        from ..files import check_output_file
        from ..hierarchy.suggest import suggest_spec
        from ..spec import text_tree, with_overrides
        from ..tracking.runs import model_dir_of

        check_output_file(args.out, "--out")
        check_output_file(Path(args.out).with_suffix(".png"), "--out")
        clf = load_model(model_dir_of(args.model))
        found = suggest_spec(clf, with_overrides(clf.spec, data=args.data), args.split, args.method,
                             args.max_children, args.out)
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
        from ..tracking.experiment import run_transfer
        from ..tracking.runs import ui_hint
        from ..tracking.store import tracking_uri

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
        from ..compose.transfer import suggest_labels
        from ..data import load_faces, load_for_spec
        from ..spec import with_overrides

        target = load_faces(args.data, skip_bad=args.skip_bad)
        clf = load_model(args.model_dir)
        source, _ = load_for_spec(with_overrides(clf.spec, data=args.source_data))
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
        from ..pretrained import cards

        found = cards()
        if args.json:
            print(json.dumps(found, indent=2))
            return 0
        for card in found:
            print(f"{card['name']}: {card.get('kind', '?')} {card.get('spec', '')}, {card.get('parameters', 0):,} "
                  f"parameters, {card['bytes'] / 1e6:.2f} MB, trained on {card.get('data', '?')} "
                  f"({card.get('epochs_trained', '?')} epochs)")
            if "private_accuracy" in card:
                print(f"  PublicTest {card['public_accuracy']:.4f}, PrivateTest {card['private_accuracy']:.4f} "
                      f"(macro F1 {card['private_macro_f1']:.4f})")
                print("  PrivateTest recall: " + ", ".join(f"{c} {r:.2f}" for c, r in card["private_recall"].items()))
            print(f"  command: {card.get('command', '?')}")
            print(f"  card: {Path(card['path']) / 'MODEL_CARD.md'}")
        if not found:
            print("(no model ships with this installation)")
        return 0


COMMANDS = [Evaluate, Predict, Export, Suggest, Transfer, SuggestLabels, Models]
