"""MLflow tracking: one parent run per ``cnntree train``, one nested child run per network.

The default store is ``sqlite:///runs/mlflow.db`` with artifacts under ``runs/artifacts``;
``MLFLOW_TRACKING_URI`` overrides it. Runs end FAILED when training raises (MLflow's own
context manager), never RUNNING.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import mlflow
import numpy as np
from mlflow.entities import Metric, Param

from .errors import CnnTreeError

RUNS = Path("runs")
DEFAULT_URI = f"sqlite:///{RUNS}/mlflow.db"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def check_server(uri: str, timeout: float = 5.0) -> None:
    """Fail at once, before any training, when an HTTP tracking server does not answer.

    cnntree does not fall back to the local store: runs logged where the user did not look are
    as good as lost. MLflow itself would retry for minutes first.
    """
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            pass
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CnnTreeError(f"MLflow server {uri}: unreachable ({reason}); start it, or unset MLFLOW_TRACKING_URI "
                           f"to log to the local store {DEFAULT_URI}") from None


def use_experiment(name: str) -> str:
    """Point MLflow at the store and the experiment ``name`` (created on first use)."""
    uri = tracking_uri()
    check_server(uri)
    if uri == DEFAULT_URI:
        RUNS.mkdir(exist_ok=True)
    mlflow.set_tracking_uri(uri)
    with _store_lock(uri):
        return _use_experiment(uri, name)


@contextlib.contextmanager
def _store_lock(uri: str):
    """Serialise the first touch of a sqlite store across processes: MLflow creates and migrates its
    tables then, and two processes doing it at once fail ("duplicate column")."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    database = Path(uri[len("sqlite:///"):])
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.parent / f".{database.name}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _use_experiment(uri: str, name: str) -> str:
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


def end_abandoned_run(record: Path) -> str | None:
    """The run id an earlier training of this work folder recorded; if that run is still RUNNING, its
    process was killed (the folder's lock was free), so it is ended FAILED and tagged why."""
    if not record.exists():
        return None
    try:
        previous = json.loads(record.read_text())
        client = mlflow.tracking.MlflowClient(previous["tracking_uri"])
        run = client.get_run(previous["run_id"])
    except (OSError, ValueError, KeyError, mlflow.exceptions.MlflowException):
        return None  # a record from another store or a damaged one: nothing to end
    if run.info.status == "RUNNING":
        client.set_tag(run.info.run_id, "cnntree.ended", "killed or crashed: found RUNNING by the next training "
                       "of its work folder")
        for child in client.search_runs([run.info.experiment_id],
                                        f"tags.mlflow.parentRunId = '{run.info.run_id}' and attributes.status = 'RUNNING'"):
            client.set_terminated(child.info.run_id, "FAILED")
        client.set_terminated(run.info.run_id, "FAILED")
    return run.info.run_id


class _FoldLog:
    def log(self, row: dict) -> None:
        mlflow.log_metrics({k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "fold"})
        if "subjects" in row:
            mlflow.log_param("subjects", ",".join(row["subjects"])[:6000])


@contextlib.contextmanager
def fold_run(index: int):
    """One nested MLflow run per cross-validation fold; ``log(row)`` records the fold's figures."""
    with mlflow.start_run(run_name=f"fold {index + 1}", nested=True):
        mlflow.set_tag("cnntree.fold", str(index + 1))
        yield _FoldLog()


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


def absolute_uri(uri: str) -> str:
    """A sqlite URI with an absolute path, so a worker in another folder opens the same store."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith("/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


class NetworkRun:
    """One network's nested MLflow run, under the active parent run.

    Picklable, so a worker process or Ray task opens it where the network trains: entering
    creates the child run and yields the callback that logs every epoch; leaving ends it FINISHED,
    or FAILED when training raised.
    """

    def __init__(self, node):
        parent = mlflow.active_run()
        self.uri = absolute_uri(mlflow.get_tracking_uri())
        self.experiment_id, self.parent_id = parent.info.experiment_id, parent.info.run_id
        self.name = node.id
        self.params = flatten({"model": node.model, "augment": node.augment, "train": node.train,
                               "balance": node.balance, "groups": ["+".join(g) for g in node.groups]})

    def __enter__(self):
        import keras

        self.client = mlflow.tracking.MlflowClient(self.uri)
        run = self.client.create_run(self.experiment_id, run_name=self.name,
                                     tags={"mlflow.parentRunId": self.parent_id, "cnntree.network": self.name,
                                           "cnntree.kind": "network"})
        self.run_id = run.info.run_id
        params = [Param(k, v) for k, v in self.params.items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[start:start + 100])
        return [keras.callbacks.LambdaCallback(on_epoch_end=self._log_epoch)]

    def _log_epoch(self, epoch: int, logs: dict | None) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k.replace("learning_rate", "lr"), float(v), now, epoch)
                                                    for k, v in (logs or {}).items()])

    def __exit__(self, kind, error, trace):
        self.client.set_terminated(self.run_id, "FAILED" if kind else "FINISHED")
        return False


class PyfuncClassifier(mlflow.pyfunc.PythonModel):
    """Serves a saved classifier: input rows are faces, as FER2013's space-separated ``pixels``
    column or 2304 numeric columns; output is one probability column per class and ``label``."""

    _skip_type_hint_validation = True  # rows are parsed in predict; MLflow's type-hint check only warns

    def load_context(self, context):
        from .classifier import CnnTreeClassifier

        self.classifier = CnnTreeClassifier.load(context.artifacts["classifier"])

    def predict(self, context, model_input, params=None):
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
    with _quiet_mlflow():
        mlflow.pyfunc.log_model(name="model", python_model=PyfuncClassifier(),
                                artifacts={"classifier": str(classifier_dir)},
                                code_paths=[str(Path(__file__).parent)],
                                pip_requirements=["tensorflow", "keras>=3", "numpy", "pandas", "scikit-learn",
                                                  "networkx", "albumentations", "opencv-python-headless<5",
                                                  "matplotlib", "mlflow"])


@contextlib.contextmanager
def _quiet_mlflow():
    """MLflow's advice on type hints and pickling, and its copy progress bars, are not for cnntree's
    users: their console shows cnntree's progress and results only."""
    import logging
    import warnings

    logger = logging.getLogger("mlflow")
    level, bar = logger.level, os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    logger.setLevel(logging.ERROR)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        if bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bar


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
