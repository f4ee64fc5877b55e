"""Commands on a trained classifier: evaluate, calibrate, predict, explain, export, ensemble, suggest,
transfer, suggest-labels, models."""

from __future__ import annotations

import json
from pathlib import Path

from .options import EPOCHS, SEED_VALUE, SPLIT_NAME, add_coverage, add_json, count, data_line, info


def model_argument(p, optional: bool = False) -> None:
    """The model positional argument (a folder or a shipped model's name)."""
    help_text = ("a model directory (runs/models/<spec>, cnntree export --out), a shipped model's name (cnntree "
                 "models), an MLflow run id or runs:/<id>, or models:/<name>/<version>")
    if optional:
        from ..pretrained import default_model

        p.add_argument("model_dir", nargs="?", default=default_model(), help=help_text + "; default: the shipped "
                       "default")
    else:
        p.add_argument("model_dir", help=help_text + ", e.g. default")


def test_time_argument(p) -> None:
    """``--test-time``: the views a trained classifier averages over, instead of its spec's."""
    p.add_argument("--test-time", choices=("none", "flip", "ten_crop"), help="average each face's prediction "
                   "over these views: none, flip (with its mirror image), ten_crop (4 corners, centre and their "
                   "mirrors: 10x the work); default: the model's own setting")


def load_model(reference, test_time: str | None = None):
    """The classifier a reference names (a model folder, a shipped name, a run id, ``runs:/<id>``,
    ``models:/<name>/<version>``); ``test_time`` replaces its test-time views."""
    from ..compose.storage import load
    from ..pretrained import resolve
    from ..spec import with_overrides

    if not resolve(reference).exists():  # MLflow is loaded only when no folder or shipped model answers
        from ..models import is_logged
        from ..tracking.runs import model_dir_of

        if is_logged(reference):
            reference = model_dir_of(reference)
    clf = load(reference)
    return clf.set_params(spec=with_overrides(clf.spec, test_time=test_time)) if test_time else clf


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


def chosen_hierarchy(args):
    """What ``--abstain`` and ``--hierarchy`` name: "abstain", a tree spec, or None (the model's own)."""
    from ..spec import load_spec

    if getattr(args, "abstain", False):
        return "abstain"
    return load_spec(args.hierarchy) if args.hierarchy else None


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
        from ..compose.metrics import evaluate_split, headline
        from ..compose.reports import evaluation_table
        from ..data.labels import parse_label_map
        from ..files import check_output_file
        from ..spec import with_overrides

        clf = load_model(args.model_dir, args.test_time)
        if args.explain:
            clf.keras_models()  # explanations need the Keras networks: fail before evaluating
        report = Path(args.report) if args.report else (
            Path("runs", "evaluate", f"{clf.spec.name}-{args.split}") if args.explain else None)
        if report:
            check_output_file(report / "report.json", "--report")
        spec = with_overrides(clf.spec, skip_bad=args.skip_bad or None)
        out = evaluate_split(clf, spec, args.data, args.split, parse_label_map(args.label_map),
                             explain=args.explain or 0, coverage=args.coverage, hierarchy=chosen_hierarchy(args))
        split, result = out["split"], out["result"]
        data_line(out["data"], split, out["faces"])
        if report:
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


def log_evaluation(model_dir, clf, out: dict, folder: Path) -> list[Path]:
    """An evaluation's report files (and its mistakes grid) in ``folder``, and an MLflow run of
    experiment ``evaluate`` holding them with the headline metrics."""
    import mlflow

    from ..compose.metrics import headline
    from ..compose.reports import write_evaluation
    from ..plots import draw_mistakes
    from ..tracking import store

    split, result = out["split"], out["result"]
    files = write_evaluation(result, clf.spec.classes, split, folder)
    if out.get("mistakes"):
        files.append(draw_mistakes(out["mistakes"], folder / f"{split}_mistakes.png",
                                   f"{clf.spec.name}, {split}: most confident mistakes per true class (Grad-CAM of "
                                   "the class taken)"))
    store.use_experiment("evaluate")
    with mlflow.start_run(run_name=f"evaluate {clf.spec.name} on {split}"):
        mlflow.set_tags({"cnntree.kind": "evaluation", "cnntree.spec": clf.spec.name})
        mlflow.log_params({"model": str(model_dir), "split": split, "faces": out["faces"]})
        mlflow.log_metrics({**headline(result, split), **answer_headline(out.get("hierarchical") or {}, split)})
        for file in files:
            mlflow.log_artifact(str(file), "evaluation")
    return files


def answer_headline(found: dict, split: str) -> dict:
    """``evaluate --coverage``'s metrics under the one vocabulary: ``private_answers_coverage_90``,
    ``private_answers_specificity_90``, ``private_answers_haurc`` (the abstention baseline's as
    ``private_abstain_*``)."""
    from ..compose.metrics import split_prefix

    out = {}
    for name, m in found.items():
        stem = f"{split_prefix(split)}_{'abstain' if name == 'abstain' else 'answers'}"
        level = f"{round(m['target'] * 100):d}"
        out.update({f"{stem}_coverage_{level}": m["coverage"], f"{stem}_specificity_{level}": m["specificity"],
                    f"{stem}_haurc": m["haurc"]})
    return out


class Calibrate:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "calibrate", "refit a trained classifier's calibration on its validation faces, no retraining"

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
        from ..compose.metrics import evaluate
        from ..compose.storage import check_model_folder, save_calibration
        from ..data import load_for_spec
        from ..pretrained import resolve
        from ..spec import with_overrides

        source = resolve(args.model_dir)
        out = Path(args.out or source)
        check_model_folder(out, reads=[source], in_place=True)
        clf = load_model(source)
        data, splits = load_for_spec(with_overrides(clf.spec, data=args.data))
        if args.coverage:
            return calibrate_answers(args, clf, data, splits, source, out)
        parts = {"Validation": splits.validation, **splits.tests}
        data_line(data.source, "fitted on Validation, measured on " + ", ".join(parts), len(splits.validation))

        def measure():
            out = {}
            for split, index in parts.items():
                result = evaluate(clf, data.images[index], data.labels[index])
                m = result["modes"][result["default_mode"]]
                out[split] = {k: m[k] for k in ("accuracy", "ece", "nll", "brier") if k in m}
            return out

        before = {"methods": {n.id: clf.calibration(n).name for n in clf.spec.nodes}, "metrics": measure()}
        fitted = clf.calibrate(data.images[splits.validation], data.labels[splits.validation], args.method)
        after = {"methods": {k: v["method"] for k, v in fitted.items()}, "metrics": measure()}
        written = save_calibration(clf, source, out)
        if args.json:
            print(json.dumps({"data": data.source, "split": "Validation", "faces": int(len(splits.validation)),
                              "before": before, "after": after, "fitted": fitted, "out": str(written)}, indent=2))
            return 0
        print(f"{'split':12s} {'calibration':22s} {'accuracy':>9s} {'ECE':>7s} {'NLL':>7s} {'Brier':>7s}")
        for split in parts:
            for label, state in ((f"{'/'.join(sorted(set(before['methods'].values())))} (before)", before),
                                 (args.method, after)):
                m = state["metrics"][split]
                print(f"{split:12s} {label:22s} {m['accuracy']:9.4f} " +
                      " ".join(f"{m[k]:7.4f}" if k in m else f"{'-':>7s}" for k in ("ece", "nll", "brier")))
        for node_id, record in fitted.items():
            state = ", ".join(f"{k} {v:.3f}" for k, v in record["state"].items() if isinstance(v, float))
            bound = clf.calibrations_[node_id].at_bound
            print(f"network {node_id}: {record['method']}" + (f" ({state})" if state else "")
                  + ("  warning: the fit ended at a bound of its parameters (too few or uninformative validation "
                     "faces); the calibration is not a real optimum" if bound else ""))
        print(f"wrote {written}")
        return 0


def calibrate_answers(args, clf, data, splits, source, out) -> int:
    """``calibrate --coverage``: the conformal thresholds of the model's hierarchy and of the flat
    abstention baseline on ``--split``, kept with the model."""
    from ..compose import answers
    from ..compose.climbing import Hierarchy
    from ..compose.storage import save_climbing
    from ..errors import CnnTreeError

    index = splits.validation if args.split == "Validation" else splits.tests.get(args.split)
    if index is None:
        raise CnnTreeError(f"--split: no split \"{args.split}\"; use Validation or one of {', '.join(splits.tests)}")
    hierarchy = answers.hierarchy_for(clf, chosen_hierarchy(args))
    data_line(data.source, f"{args.split} (conformal calibration of hierarchy {hierarchy.name})", len(index))
    proba, labels = clf.predict_proba(data.images[index]), data.labels[index]
    where = {"split": args.split, "data": Path(data.source).name}
    record = answers.calibrate(getattr(clf, "climbing_", None), hierarchy, proba, labels, args.coverage, where)
    written = save_climbing(record, source, out)
    rows = []
    for each in (hierarchy, Hierarchy.flat(hierarchy.classes)):
        for coverage in args.coverage:
            found = record["hierarchies"][each.name]["thresholds"][f"{coverage:g}"]
            nodes = each.answer(proba, found["threshold"])
            rows.append({"hierarchy": each.name, "coverage": coverage, **found,
                         "specificity_here": float(each.specificity[nodes].mean())})
    if args.json:
        print(json.dumps({"data": data.source, "split": args.split, "faces": int(len(index)), "thresholds": rows,
                          "out": str(written)}, indent=2))
        return 0
    print(f"{'hierarchy':16s} {'coverage':>8s} {'threshold':>10s} {'faces':>6s} {'specificity on these faces':>27s}")
    for row in rows:
        print(f"{row['hierarchy'][:16]:16s} {row['coverage']:8g} {row['threshold']:10.4f} {row['faces']:6d} "
              f"{row['specificity_here']:27.4f}")
    print(f"wrote {written / answers.FILE}")
    return 0


def model_and_faces(items: list[str], detect: bool = True):
    """``[MODEL] IMAGE...`` as (model, one row per face: image, box and how it was found, faces):
    the first item is a model when it names a shipped one or a folder. Faces are found in photos
    as the mirror finds them (``live.detect.faces_in_photo``); bad image files fail before any model
    loads."""
    import numpy as np

    from ..data import IMAGE_SUFFIXES, read_grey
    from ..errors import CnnTreeError
    from ..live.detect import FaceDetector, faces_in_photo
    from ..models import check_reference
    from ..pretrained import default_model, names

    first = Path(items[0])
    looks_like_a_folder = not first.exists() and first.suffix.lower() not in IMAGE_SUFFIXES and len(items) > 1
    is_model = items[0] in names() or first.is_dir() or looks_like_a_folder
    model, images = (items[0], items[1:]) if is_model else (default_model(), items)
    if not images:
        raise CnnTreeError(f"{items[0]}: a model; give the face images after it")
    check_reference(model)
    detector = FaceDetector() if detect else None
    rows, faces = [], []
    for path in images:
        found = faces_in_photo(read_grey(path), detector)
        info(f"{path}: {found.found}")
        for k, box in enumerate(found.boxes.tolist()):
            whole = found.found.startswith("whole")
            rows.append({"image": str(path), "face": k + 1, "box": box, "found": found.found,
                         "where": str(path) if whole else f"{path} face {k + 1} at {box[0]},{box[1]} {box[2]}x{box[3]}"})
        faces.append(found.faces)
    return model, rows, np.concatenate(faces)


def add_model_and_images(p) -> None:
    """The ``[MODEL] IMAGE...`` positional arguments and ``--no-detect``."""
    p.add_argument("items", nargs="+", metavar="[MODEL] IMAGE", help="a model directory or shipped model's "
                   "name (default: the shipped default), then image files: photos (every face found in them, as "
                   "the mirror finds faces) or face crops (an image of at most 96 px a side is one face)")
    p.add_argument("--no-detect", action="store_true", help="take every image whole as one face, without "
                   "looking for faces in it")


class Predict:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "predict", "emotion of face images (each resized to grey 48x48)"

    @staticmethod
    def check(args):
        args.found = model_and_faces(args.items, not args.no_detect)  # before the backend loads

    @staticmethod
    def add_arguments(p):
        add_model_and_images(p)
        test_time_argument(p)
        add_coverage(p)
        add_json(p)

    @staticmethod
    def run(args) -> int:
        model, rows, faces = args.found
        clf = load_model(model, args.test_time)
        classes = clf.spec.classes
        proba = clf.predict_proba(faces)
        for row, q in zip(rows, proba):
            row.update(label=classes[int(q.argmax())], probabilities=dict(zip(classes, map(float, q))))
        if args.coverage:
            from ..compose import answers

            hierarchy = answers.hierarchy_for(clf, chosen_hierarchy(args))
            info(f"hierarchy {hierarchy.name}, coverage {args.coverage:g}: "
                 + answers.guarantee(clf, hierarchy, args.coverage))
            for row, found in zip(rows, answers.answer(clf, proba, hierarchy, args.coverage)):
                row["answer"] = {"node": found.node, "label": found.label, "probability": found.probability,
                                 "hierarchy": hierarchy.name, "coverage": args.coverage}
        if args.json:
            print(json.dumps([{k: v for k, v in row.items() if k != "where"} for row in rows], indent=2))
            return 0
        for row in rows:
            said = row.get("answer") or {"label": row["label"], "probability": row["probabilities"][row["label"]]}
            print(f"{row['where']}: {said['label']} ({said['probability']:.2f})")
        return 0


def explained_names(out, rows) -> list[Path]:
    """``<image>.explained.png`` in ``out`` for each face (``<image>-face2.explained.png`` for the
    second face of a photo); images of the same name from different folders (or given twice) get
    ``-2``, ``-3``, ... so no picture overwrites another."""
    pictures, taken = [], set()
    faces_of: dict[str, int] = {}
    for row in rows:
        faces_of[row["image"]] = faces_of.get(row["image"], 0) + 1
    for row in rows:
        stem = Path(row["image"]).stem + (f"-face{row['face']}" if faces_of[row["image"]] > 1 else "")
        k = 1
        while (name := f"{stem}{f'-{k}' if k > 1 else ''}.explained.png") in taken:
            k += 1
        taken.add(name)
        pictures.append(Path(out) / name)
    return pictures


class Explain:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "explain", "heat maps of what each network looks at, one picture per face"

    @staticmethod
    def check(args):
        args.found = model_and_faces(args.items, not args.no_detect)  # before the backend loads

    @staticmethod
    def add_arguments(p):
        add_model_and_images(p)
        p.add_argument("--out", required=True, metavar="DIR", help="folder for the pictures (<image>.explained.png)")
        p.add_argument("--method", choices=("gradcam", "saliency"), default="gradcam",
                       help="Grad-CAM of the last feature map (default) or gradient saliency per pixel")
        p.add_argument("--class", dest="target", metavar="NAME", help="explain this class (default: the prediction)")
        p.add_argument("--mode", help="combining mode for the prediction (tree: soft or hard)")
        add_json(p)

    @staticmethod
    def run(args) -> int:
        from ..compose.explain import explain
        from ..errors import CnnTreeError
        from ..files import check_output_file
        from ..plots import draw_explanations

        model, faces_found, faces = args.found
        pictures = explained_names(args.out, faces_found)
        for picture in pictures:
            check_output_file(picture, "--out")
        clf = load_model(model)
        clf.keras_models()  # exported networks give no gradients: one line, before any work
        clf.combiner(args.mode)
        classes = list(clf.spec.classes)
        if args.target is not None and args.target not in classes:
            raise CnnTreeError(f"--class {args.target}: not a class of this model ({', '.join(classes)})")
        targets = None if args.target is None else [classes.index(args.target)] * len(faces)
        found = explain(clf, faces, targets, args.method, args.mode)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        rows = []
        for face, picture, e in zip(faces_found, pictures, found):
            draw_explanations([e], picture, f"{Path(face['where']).name}: {args.method}")
            rows.append({"image": face["image"], "face": face["face"], "box": face["box"], "found": face["found"],
                         "where": face["where"], "picture": str(picture), "class": e.label,
                         "probability": e.probability,
                         "steps": [{"network": s.network, "branch": s.branch, "probability": s.probability}
                                   for s in e.steps]})
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        for row in rows:
            path = ", ".join(f"{s['network']} {s['branch']} {s['probability']:.2f}" for s in row["steps"])
            print(f"{row['where']}: {row['class']} {row['probability']:.2f} ({path}) -> {row['picture']}")
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
        from ..compose.storage import check_model_folder, export

        check_model_folder(args.out, reads=[args.model_dir])
        clf = load_model(args.model_dir)
        out = export(clf, args.out, args.format)
        print(f"wrote {out} ({args.format}: {len(clf.spec.nodes)} network(s) with the routing metadata; "
              f"run it with cnntree mirror {out})")
        return 0


class Ensemble:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "ensemble", "combine trained single networks into one voting classifier, nothing retrained"

    @staticmethod
    def add_arguments(p):
        p.add_argument("models", nargs="+", metavar="MODEL", help="two or more model folders or shipped names, each "
                       "a single network (e.g. snapshots of one training, or networks trained apart)")
        p.add_argument("--vote", default="soft", choices=("soft", "weighted", "hard"), help="soft: the mean of the "
                       "members' probabilities; weighted: weighted by validation accuracy; hard: majority")
        p.add_argument("--name", default="ensemble", help="the ensemble's spec name (default: ensemble)")
        p.add_argument("--out", required=True, metavar="DIR", help="the model folder (new, or one cnntree wrote)")

    @staticmethod
    def run(args) -> int:
        from ..compose.ensemble import ensemble, member_ids
        from ..compose.storage import check_model_folder, save
        from ..spec.schema import Ident

        check_model_folder(args.out, reads=args.models)
        Ident().parse(args.name, "--name")
        members = {member: load_model(path) for member, path in zip(member_ids(args.models), args.models)}
        out = save(ensemble(members, args.vote, args.name), args.out)
        print(f"wrote {out} ({args.vote} vote of {', '.join(members)}); evaluate it with "
              f"cnntree evaluate {out} --data PATH")
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
        p.add_argument("--method", choices=("agglomerative", "spectral", "weights"), default="agglomerative",
                       help="bottom-up merging of the most confused classes, top-down spectral splits, or "
                       "(NBDT) bottom-up merging of the classes whose output-layer weights are most alike")
        p.add_argument("--init", action="store_true", help="the written spec starts every node from this model "
                       "(init.from: warm start)")
        p.add_argument("--max-children", type=count(2, 16), default=2, help="children per node (2-16, default 2)")
        p.add_argument("--out", required=True, metavar="trees/NAME.json", help="the spec to write (a PNG beside it)")

    @staticmethod
    def run(args) -> int:
        from ..files import check_output_file
        from ..hierarchy.suggest import suggest_spec
        from ..models import is_logged
        from ..pretrained import names
        from ..spec import text_tree, with_overrides
        from ..tracking.runs import model_dir_of

        check_output_file(args.out, "--out")
        check_output_file(Path(args.out).with_suffix(".png"), "--out")
        model_dir = model_dir_of(args.model)
        clf = load_model(model_dir)
        # init.from names what outlives this command: a shipped name, the run or registry entry, a folder
        lasting = args.model if args.model in names() or is_logged(args.model) else Path(model_dir).resolve()
        found = suggest_spec(clf, with_overrides(clf.spec, data=args.data), args.split, args.method,
                             args.max_children, args.out, init_from=lasting if args.init else None)
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


COMMANDS = [Evaluate, Calibrate, Predict, Explain, Export, Ensemble, Suggest, Transfer, SuggestLabels, Models]
