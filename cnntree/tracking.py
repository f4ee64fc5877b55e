"""MLflow tracking: one parent run per ``cnntree train``, one nested child run per network.

The default store is ``sqlite:///runs/mlflow.db`` with artifacts under ``runs/artifacts``;
``MLFLOW_TRACKING_URI`` overrides it. Runs end FAILED when training raises (MLflow's own
context manager), never RUNNING.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import mlflow
import numpy as np

from .errors import CnnTreeError

RUNS = Path("runs")
DEFAULT_URI = f"sqlite:///{RUNS}/mlflow.db"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def use_experiment(name: str) -> str:
    """Point MLflow at the store and the experiment ``name`` (created on first use)."""
    uri = tracking_uri()
    if uri == DEFAULT_URI:
        RUNS.mkdir(exist_ok=True)
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            location = (RUNS / "artifacts" / name).resolve().as_uri() if uri == DEFAULT_URI else None
            experiment_id = mlflow.create_experiment(name, artifact_location=location)
        else:
            experiment_id = experiment.experiment_id
        mlflow.set_experiment(experiment_id=experiment_id)
        return experiment_id
    except mlflow.exceptions.MlflowException as error:
        raise CnnTreeError(f"MLflow store {uri}: {str(error).splitlines()[0]}") from None


def flatten(value, prefix: str = "") -> dict[str, str]:
    """Nested settings as MLflow params: ``{"train": {"epochs": 3}}`` -> ``{"train.epochs": "3"}``."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: json.dumps(value) if isinstance(value, (list, tuple)) else str(value)}


def spec_params(spec) -> dict[str, str]:
    """The flattened spec: top-level settings and every network's resolved sections."""
    params = flatten({"name": spec.name, "kind": spec.kind, "classes": list(spec.classes), "data": spec.data,
                      "voting": spec.voting})
    for node in spec.nodes:
        params.update(flatten({"model": node.model, "augment": node.augment, "train": node.train,
                               "balance": node.balance, "groups": ["+".join(g) for g in node.groups]},
                              f"net.{node.id}"))
    return params


def epoch_logger():
    """A Keras callback logging every epoch's metrics to the active (child) run."""
    import keras

    return keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: mlflow.log_metrics(
            {k.replace("learning_rate", "lr"): float(v) for k, v in (logs or {}).items()}, step=epoch))


@contextlib.contextmanager
def network_run(node):
    """A nested child run for one network, yielding the callbacks that log its epochs."""
    with mlflow.start_run(run_name=node.id, nested=True):
        mlflow.set_tags({"cnntree.network": node.id, "cnntree.kind": "network"})
        mlflow.log_params(flatten({"model": node.model, "augment": node.augment, "train": node.train,
                                   "balance": node.balance, "groups": ["+".join(g) for g in node.groups]}))
        yield [epoch_logger()]


class PyfuncClassifier(mlflow.pyfunc.PythonModel):
    """Serves a saved classifier: input rows are faces, as FER2013's space-separated ``pixels``
    column or 2304 numeric columns; output is one probability column per class and ``label``."""

    def load_context(self, context):
        from .classifier import CnnTreeClassifier

        self.classifier = CnnTreeClassifier.load(context.artifacts["classifier"])

    def predict(self, context, model_input, params=None):  # no type hints: MLflow would warn about them
        import pandas as pd

        frame = pd.DataFrame(model_input)
        if "pixels" in frame.columns:
            faces = np.stack([np.asarray(str(p).split(), np.float32) for p in frame["pixels"]])
        else:
            faces = frame.to_numpy(np.float32)
        faces = np.clip(faces, 0, 255).astype(np.uint8).reshape(-1, 48, 48)
        proba = self.classifier.predict_proba(faces)
        out = pd.DataFrame(proba, columns=list(self.classifier.spec.classes))
        out["label"] = [self.classifier.spec.classes[i] for i in proba.argmax(1)]
        return out


def log_pyfunc(classifier_dir: Path) -> None:
    """Log the saved classifier as an MLflow pyfunc model (``mlflow models serve`` serves it)."""
    mlflow.pyfunc.log_model(name="model", python_model=PyfuncClassifier(),
                            artifacts={"classifier": str(classifier_dir)},
                            code_paths=[str(Path(__file__).parent)],
                            pip_requirements=["tensorflow", "keras>=3", "numpy", "pandas", "scikit-learn",
                                              "networkx", "albumentations", "opencv-python-headless<5",
                                              "matplotlib", "mlflow"])


def finished_runs(experiment: str | None = None) -> list[dict]:
    """Top-level cnntree runs (trees, single networks, ensembles), newest first."""
    mlflow.set_tracking_uri(tracking_uri())
    if experiment:
        found = mlflow.get_experiment_by_name(experiment)
        if found is None:
            raise CnnTreeError(f"no MLflow experiment \"{experiment}\" in {tracking_uri()}")
        ids = [found.experiment_id]
    else:
        ids = [e.experiment_id for e in mlflow.search_experiments()]
    if not ids:
        return []
    frame = mlflow.search_runs(ids, output_format="list", order_by=["attributes.start_time DESC"])
    rows = []
    for run in frame:
        tags = run.data.tags
        if tags.get("cnntree.kind") in (None, "network") or "mlflow.parentRunId" in tags:
            continue
        rows.append({"run_id": run.info.run_id, "status": run.info.status, "spec": tags.get("cnntree.spec", ""),
                     "kind": tags["cnntree.kind"], "experiment": run.info.experiment_id,
                     "metrics": dict(run.data.metrics)})
    return rows
