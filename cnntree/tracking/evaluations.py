"""Evaluations kept in MLflow: ``cnntree evaluate --report`` as a run of experiment ``evaluate``."""

from __future__ import annotations

from pathlib import Path

import mlflow

from ..compose import answers
from ..evaluation.metrics import headline
from ..evaluation.reports import write_evaluation
from ..plots import draw_mistakes
from . import store


def log_evaluation(model_dir, clf, out: dict, folder: Path) -> list[Path]:
    """An evaluation's report files (and its mistakes grid) in ``folder``, and an MLflow run of
    experiment ``evaluate`` holding them with the headline metrics."""

    split, result = out["split"], out["result"]
    files = write_evaluation(result, clf.spec_.classes, split, folder)
    if out.get("mistakes"):
        files.append(draw_mistakes(out["mistakes"], folder / f"{split}_mistakes.png",
                                   f"{clf.spec_.name}, {split}: most confident mistakes per true class (Grad-CAM of "
                                   "the class taken)"))
    store.use_experiment("evaluate")
    with mlflow.start_run(run_name=f"evaluate {clf.spec_.name} on {split}"):
        mlflow.set_tags({"cnntree.kind": "evaluation", "cnntree.spec": clf.spec_.name})
        mlflow.log_params({"model": str(model_dir), "split": split, "faces": out["faces"]})
        mlflow.log_metrics({**headline(result, split), **answers.answer_headline(out.get("hierarchical") or {}, split)})
        for file in files:
            mlflow.log_artifact(str(file), "evaluation")
    return files
