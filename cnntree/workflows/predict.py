"""``predict`` and ``explain`` as library calls: the faces found in images, answered or explained
by the model a reference names, one row per face."""

from __future__ import annotations

from pathlib import Path

from ..compose import answers
from ..errors import CnnTreeError
from ..evaluation.explain import explain
from ..files import check_output_file
from ..models import load_model
from ..plots import draw_explanations


def predict_faces(reference, rows: list[dict], faces, test_time: str | None = None, coverage: float | None = None,
                  hierarchy=None) -> list[dict]:
    """Each face's label and probabilities added to its row (``rows`` as
    ``cli.model_args.model_and_faces`` finds them); with ``coverage``, the hierarchy's answer at
    that coverage too (``hierarchy``: a tree spec, "abstain", or None for the model's own)."""
    clf = load_model(reference, test_time)
    classes = clf.spec_.classes
    proba = clf.predict_proba(faces)
    for row, q in zip(rows, proba):
        row.update(label=classes[int(q.argmax())], probabilities=dict(zip(classes, map(float, q))))
    if coverage:
        tree = answers.announced_hierarchy(clf, coverage, hierarchy)
        for row, found in zip(rows, answers.answer(clf, proba, tree, coverage)):
            row["answer"] = {"node": found.node, "label": found.label, "probability": found.probability,
                             "hierarchy": tree.name, "coverage": coverage}
    return rows


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


def explain_faces(reference, rows: list[dict], faces, out, method: str = "gradcam", target: str | None = None,
                  mode: str | None = None) -> list[dict]:
    """One picture per face in ``out``: what each network on the face's path looks at (``method``:
    gradcam or saliency) for ``target`` (a class; default the prediction). Every output name is
    checked before any work. One row per face, with its picture and path."""
    pictures = explained_names(out, rows)
    for picture in pictures:
        check_output_file(picture, "--out")
    clf = load_model(reference)
    clf.keras_models()  # exported networks give no gradients: one line, before any work
    clf.combiner(mode)
    classes = list(clf.spec_.classes)
    if target is not None and target not in classes:
        raise CnnTreeError(f"--class {target}: not a class of this model ({', '.join(classes)})")
    targets = None if target is None else [classes.index(target)] * len(faces)
    found = explain(clf, faces, targets, method, mode)
    Path(out).mkdir(parents=True, exist_ok=True)
    explained = []
    for face, picture, e in zip(rows, pictures, found):
        draw_explanations([e], picture, f"{Path(face['where']).name}: {method}")
        explained.append({**face, "picture": str(picture), "class": e.label, "probability": e.probability,
                          "steps": [{"network": s.network, "branch": s.branch, "probability": s.probability}
                                    for s in e.steps]})
    return explained
