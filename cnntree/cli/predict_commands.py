"""Commands that answer with a trained model or change its form: predict, explain, export,
ensemble."""

from __future__ import annotations

import json
from pathlib import Path

from ..models import load_model
from .model_args import (
    add_model_and_images,
    chosen_hierarchy,
    model_and_faces,
    model_argument,
    test_time_argument,
)
from .options import add_coverage, add_json, info


class OnFaces:
    """A command on ``[MODEL] IMAGE...``: the images are read and their faces found, and the model
    reference checked, before the backend loads (``args.found``)."""

    @staticmethod
    def check(args):
        args.found = model_and_faces(args.items, not args.no_detect)


class Predict(OnFaces):
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "predict", "the emotion of every face in photos, or of face crops"

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
        classes = clf.spec_.classes
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


class Explain(OnFaces):
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "explain", "heat maps of what each network looks at, one picture per face"

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
        from ..errors import CnnTreeError
        from ..evaluation.explain import explain
        from ..files import check_output_file
        from ..plots import draw_explanations

        model, faces_found, faces = args.found
        pictures = explained_names(args.out, faces_found)
        for picture in pictures:
            check_output_file(picture, "--out")
        clf = load_model(model)
        clf.keras_models()  # exported networks give no gradients: one line, before any work
        clf.combiner(args.mode)
        classes = list(clf.spec_.classes)
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
        from ..estimator.storage import check_model_folder, export

        check_model_folder(args.out, reads=[args.model_dir])
        clf = load_model(args.model_dir)
        out = export(clf, args.out, args.format)
        print(f"wrote {out} ({args.format}: {len(clf.spec_.nodes)} network(s) with the routing metadata; "
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
        from ..estimator.ensemble import ensemble, member_ids
        from ..estimator.storage import check_model_folder, save
        from ..spec.schema import Ident

        check_model_folder(args.out, reads=args.models)
        Ident().parse(args.name, "--name")
        members = {member: load_model(path) for member, path in zip(member_ids(args.models), args.models)}
        out = save(ensemble(members, args.vote, args.name), args.out)
        print(f"wrote {out} ({args.vote} vote of {', '.join(members)}); evaluate it with "
              f"cnntree evaluate {out} --data PATH")
        return 0


COMMANDS = [Predict, Explain, Export, Ensemble]
