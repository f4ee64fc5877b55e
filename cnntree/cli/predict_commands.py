"""Commands that answer with a trained model or change its form: predict, explain, export,
ensemble.

The library is imported inside each command's functions: a command's mistakes are answered
before Keras and MLflow load (start-up time)."""

from __future__ import annotations

from ..models import load_model
from ..spec.schema import Ident
from .model_args import (
    add_model_and_images,
    chosen_hierarchy,
    model_and_faces,
    model_argument,
    test_time_argument,
)
from .options import add_coverage, add_json


class OnFaces:
    """A command on ``[MODEL] IMAGE...``: the images are read and their faces found, and the model
    reference checked, before the backend loads (``args.found``)."""

    @staticmethod
    def check(args):
        args.found = model_and_faces(args.items, not args.no_detect)


class Predict(OnFaces):
    @staticmethod
    def add_arguments(p):
        add_model_and_images(p)
        test_time_argument(p)
        add_coverage(p)
        add_json(p)

    @staticmethod
    def run(args) -> list:
        from ..workflows.predict import predict_faces

        model, rows, faces = args.found
        return predict_faces(model, rows, faces, args.test_time, args.coverage, chosen_hierarchy(args))

    @staticmethod
    def text(rows) -> str:
        said = [row.get("answer") or {"label": row["label"], "probability": row["probabilities"][row["label"]]}
                for row in rows]
        return "\n".join(f"{row['where']}: {s['label']} ({s['probability']:.2f})" for row, s in zip(rows, said))


class Explain(OnFaces):
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
    def run(args) -> list:
        from ..workflows.predict import explain_faces

        model, rows, faces = args.found
        return explain_faces(model, rows, faces, args.out, args.method, args.target, args.mode)

    @staticmethod
    def text(rows) -> str:
        return "\n".join(f"{row['where']}: {row['class']} {row['probability']:.2f} ("
                         + ", ".join(f"{s['network']} {s['branch']} {s['probability']:.2f}" for s in row["steps"])
                         + f") -> {row['picture']}" for row in rows)


class Export:
    @staticmethod
    def add_arguments(p):
        model_argument(p)
        p.add_argument("--format", required=True, choices=("onnx", "tflite", "savedmodel"), help="the export format")
        p.add_argument("--out", required=True, metavar="DIR", help="the export folder (new, or one cnntree wrote)")

    @staticmethod
    def run(args) -> dict:
        from ..estimator.storage import check_model_folder, export

        check_model_folder(args.out, reads=[args.model_dir])
        clf = load_model(args.model_dir)
        return {"out": str(export(clf, args.out, args.format)), "format": args.format, "networks": len(clf.spec_.nodes)}

    @staticmethod
    def text(found) -> str:
        return (f"wrote {found['out']} ({found['format']}: {found['networks']} network(s) with the routing metadata; "
                f"run it with cnntree mirror {found['out']})")


class Ensemble:
    @staticmethod
    def add_arguments(p):
        p.add_argument("models", nargs="+", metavar="MODEL", help="two or more model folders or shipped names, each "
                       "a single network (e.g. snapshots of one training, or networks trained apart)")
        p.add_argument("--vote", default="soft", choices=("soft", "weighted", "hard"), help="soft: the mean of the "
                       "members' probabilities; weighted: weighted by validation accuracy; hard: majority")
        p.add_argument("--name", default="ensemble", help="the ensemble's spec name (default: ensemble)")
        p.add_argument("--out", required=True, metavar="DIR", help="the model folder (new, or one cnntree wrote)")

    @staticmethod
    def run(args) -> dict:
        from ..estimator.ensemble import ensemble, member_ids
        from ..estimator.storage import check_model_folder, save

        check_model_folder(args.out, reads=args.models)
        Ident().parse(args.name, "--name")
        members = {member: load_model(path) for member, path in zip(member_ids(args.models), args.models)}
        return {"out": str(save(ensemble(members, args.vote, args.name), args.out)), "vote": args.vote,
                "members": list(members)}

    @staticmethod
    def text(found) -> str:
        return (f"wrote {found['out']} ({found['vote']} vote of {', '.join(found['members'])}); evaluate it with "
                f"cnntree evaluate {found['out']} --data PATH")


COMMANDS = {"predict": Predict, "explain": Explain, "export": Export, "ensemble": Ensemble}
