"""``evaluate`` as one library call: a model reference measured on a test split or another data
set, with hierarchical answers, explained mistakes and a report logged to MLflow on request."""

from __future__ import annotations

from pathlib import Path

from ..data.labels import parse_label_map
from ..errors import CnnTreeError
from ..evaluation.metrics import evaluate_split, headline
from ..files import check_output_file
from ..models import load_model
from ..spec import with_overrides


def evaluate_model(reference, data=None, split: str = "PrivateTest", label_map: str | None = None,
                   test_time: str | None = None, skip_bad: bool = False, report=None, explain: int = 0,
                   coverage: float | None = None, hierarchy=None) -> dict:
    """The model ``reference`` names, evaluated on ``split`` of its own data or of ``data`` (classes
    matched by name and ``label_map``). ``report`` (a folder; with ``explain`` by default
    ``runs/evaluate/<model>-<split>``) keeps the report files and logs them as an MLflow run.
    Returns what was measured (JSON-able)."""
    clf = load_model(reference, test_time)
    if explain:
        clf.keras_models()  # explanations need the Keras networks: fail before evaluating
    folder = Path(report) if report else (Path("runs", "evaluate", f"{clf.spec_.name}-{split}") if explain else None)
    if folder:
        check_output_file(folder / "report.json", "--report")
    spec = with_overrides(clf.spec_, skip_bad=skip_bad or None)
    if coverage is None and hierarchy is not None:
        raise CnnTreeError("a hierarchy for the answers goes with a coverage")
    out = evaluate_split(clf, spec, data, split, parse_label_map(label_map), explain=explain,
                         coverage=coverage, hierarchy=hierarchy)
    files = []
    if folder:
        from ..tracking.evaluations import log_evaluation  # MLflow loads only for a report

        files = [str(f) for f in log_evaluation(reference, clf, out, folder)]
    return {"data": out["data"], "split": out["split"], "faces": out["faces"],
            "metrics": headline(out["result"], out["split"]), "result": out["result"],
            "hierarchical": out.get("hierarchical"), "report": str(folder) if folder else None, "files": files}
