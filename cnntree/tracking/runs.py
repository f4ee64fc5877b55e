"""MLflow runs: one parent per training, one nested child per network or fold, what each logs,
how interrupted runs end, and how finished ones are listed.

Runs end FAILED when training raises, KILLED on Ctrl-C or SIGTERM, never RUNNING.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
from mlflow.entities import Metric, Param

from ..errors import CnnTreeError
from ..interrupts import held
from .store import absolute_uri, connect, quiet_mlflow, sqlite_file, tracking_uri


def end_abandoned_run(record: Path, printer=print) -> str | None:
    """The run id an earlier training of this work folder recorded; if that run is still RUNNING, its
    process was killed or crashed in native code (the folder's lock was free), so it is ended FAILED,
    tagged why, and the user is told in one line."""
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
        printer(f"the previous training of {record.parent} (MLflow run {run.info.run_id}) ended without finishing "
                "(killed, or crashed in native code); its run is now marked FAILED, and --resume continues "
                "from its last checkpoint")
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


class NetworkRun:
    """One network's nested MLflow run, under the active parent run (``node``: anything with an
    ``id`` and ``settings()``, a spec's network or a training stage such as joint fine-tuning).

    Picklable, so a worker process or Ray task opens it where the network trains: entering
    creates the child run and yields the callback that logs every epoch; leaving ends it FINISHED,
    or FAILED when training raised.
    """

    def __init__(self, node):
        parent = mlflow.active_run()
        self.uri = absolute_uri(mlflow.get_tracking_uri())
        self.experiment_id, self.parent_id = parent.info.experiment_id, parent.info.run_id
        self.name = node.id
        self.params = flatten(node.settings())

    def __enter__(self):
        import keras

        self.client = mlflow.tracking.MlflowClient(self.uri)
        with held():
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
        with held():  # Ctrl-C at an epoch's end, where a user sees the epoch's line, waits for its figures
            self.client.log_batch(self.run_id, metrics=[Metric(k.replace("learning_rate", "lr"), float(v), now, epoch)
                                                        for k, v in (logs or {}).items()])

    def __exit__(self, kind, error, trace):
        self.client.set_terminated(self.run_id, end_status(kind))
        return False


def log_shared_nodes(clf) -> None:
    """A shared trunk's nodes train inside the joint fine-tuning, not one by one; each still gets its
    child run (its settings, where its own layers start, its validation accuracy), so the MLflow UI
    lists the flat network, the nodes and the fine-tuning of every tree alike."""
    for node in clf.spec_.nodes:
        run = NetworkRun(node)
        run.params["trunk.branch_at"] = str(clf.spec_.trunk["branch_at"])
        with run:
            if node.id in clf.val_accuracy_:
                run.client.log_metric(run.run_id, "val_accuracy", clf.val_accuracy_[node.id])


def end_status(kind) -> str:
    """How a run ends: FINISHED, KILLED (Ctrl-C, SIGTERM) or FAILED (an error)."""
    if kind is None:
        return "FINISHED"
    return "KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED"


@contextlib.contextmanager
def killed_on_interrupt():
    """Inside ``mlflow.start_run``: an interrupt ends the active run KILLED instead of FAILED."""
    try:
        yield
    except KeyboardInterrupt:
        mlflow.end_run("KILLED")
        raise


def log_dataset(data, splits) -> None:
    """The training data as an MLflow dataset input (name, source, digest, split sizes), so the
    UI's Dataset column shows what every run was trained on."""
    import hashlib

    import mlflow.data

    digest = hashlib.sha1(data.labels.tobytes() + data.images[:: max(1, len(data) // 512)].tobytes()).hexdigest()[:8]
    name = Path(data.source).name.removesuffix(".gz").removesuffix(".csv") or "data"
    with quiet_mlflow():
        dataset = mlflow.data.from_numpy(data.labels, source=str(Path(data.source).absolute()), name=name,
                                         digest=digest)
        mlflow.log_input(dataset, context="training",
                         tags={"faces": str(len(data)), "classes": ",".join(data.classes)[:5000],
                               **{f"split.{k}": str(v) for k, v in splits.sizes().items()}})


def ui_hint(experiment_id: str, compared=()) -> str:
    """How to look at an experiment's runs: the command that starts the UI, the runs page's URL and,
    for two or more ``compared`` run ids, the UI's page comparing them."""
    from urllib.parse import quote

    uri = tracking_uri()
    server = uri.rstrip("/") if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
    start = "" if uri.startswith(("http://", "https://")) else f"mlflow ui --backend-store-uri {uri}   then open "
    lines = [f"MLflow UI: {start}{server}/#/experiments/{experiment_id}/runs"]
    if len(compared) > 1:
        query = f"runs={quote(json.dumps(list(compared)))}&experiments={quote(json.dumps([experiment_id]))}"
        lines.append(f"compare with the other {len(compared) - 1} finished run(s) on this data: "
                     f"{server}/#/compare-runs?{query}")
    return "\n".join(lines)


def finished_parents_on(experiment_id: str, data_source: str, run_id: str) -> list[str]:
    """``run_id`` and the other finished cnntree trainings (parent runs) of the experiment on the same
    data, newest first: what a user compares a new training with."""
    found = mlflow.MlflowClient().search_runs(
        [experiment_id], "attributes.status = 'FINISHED' and tags.cnntree.kind != 'network'",
        order_by=["attributes.start_time DESC"], max_results=200)
    others = [r.info.run_id for r in found if r.info.run_id != run_id and "mlflow.parentRunId" not in r.data.tags
              and r.data.params.get("data.source") == data_source]
    return [run_id, *others[:19]]


def register(model_uri: str, name: str) -> str:
    """Register a logged classifier in MLflow's model registry as a new version of ``name``; the version."""
    with quiet_mlflow():
        try:
            return str(mlflow.register_model(model_uri, name).version)
        except mlflow.exceptions.MlflowException as error:
            raise CnnTreeError(f"--register {name}: {str(error).splitlines()[0]}") from None


def describe_children(run_id: str, experiment_id: str) -> None:
    """The parent run's description (the UI's Description box) lists its child runs with links."""
    client = mlflow.MlflowClient()
    children = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{run_id}'",
                                  order_by=["attributes.start_time ASC"])
    lines = [f"{len(children)} child run(s):"] + [
        f"- [{c.info.run_name}](#/experiments/{experiment_id}/runs/{c.info.run_id}) ({c.info.status.lower()})"
        for c in children]
    client.set_tag(run_id, "mlflow.note.content", "\n".join(lines))


def finished_runs(experiments=None) -> list[dict]:
    """Top-level cnntree runs (trees, single networks, ensembles) of the named experiments (a name
    or a list; default: all), newest first. Reading never creates a store: with no local store
    file yet there are no runs."""
    database = sqlite_file(tracking_uri())
    if database is not None and not database.exists():
        if experiments:
            raise CnnTreeError(f"no MLflow experiment \"{experiments if isinstance(experiments, str) else experiments[0]}\" "
                               f"in {tracking_uri()} (no store yet: cnntree train makes one)")
        return []
    connect()
    if experiments:
        ids = []
        for name in [experiments] if isinstance(experiments, str) else experiments:
            found = mlflow.get_experiment_by_name(name)
            if found is None:
                raise CnnTreeError(f"no MLflow experiment \"{name}\" in {tracking_uri()}")
            ids.append(found.experiment_id)
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
                     "experiment_name": mlflow.get_experiment(run.info.experiment_id).name,
                     "quick": tags.get("cnntree.quick") == "True", "seed": tags.get("cnntree.seed"),
                     "data": run.data.params.get("data.source", ""), "metrics": dict(run.data.metrics)})
    return rows


def over_seeds(runs: list[dict], metric: str) -> list[dict]:
    """Finished runs of the same spec, data and budget (quick or not) grouped: the mean and the
    standard deviation of ``metric`` over their distinct seeds. A seed run again counts once, by its
    latest run (``runs`` is newest first)."""
    groups: dict[tuple, dict] = {}
    for run in runs:
        if run["status"] == "FINISHED" and metric in run["metrics"]:
            groups.setdefault((run["spec"], run["data"], run["quick"]), {}).setdefault(run["seed"], run["metrics"][metric])
    return [{"spec": spec, "data": data, "quick": quick, "seeds": len(by_seed),
             "mean": float(np.mean(list(by_seed.values()))), "std": float(np.std(list(by_seed.values())))}
            for (spec, data, quick), by_seed in groups.items()]


def download_classifier(reference: str, run_id: str | None = None, model: tuple | None = None) -> Path:
    """The classifier an MLflow training logged, from its run or from a registry entry ``model``
    (name, version, alias), downloaded into a temporary folder removed when the process ends
    (``models.model_dir`` is the resolver every caller uses)."""
    database = sqlite_file(tracking_uri())
    if database is not None and not database.is_file():  # and no store is created by looking
        raise CnnTreeError(f"{reference}: neither a model directory nor a run: no MLflow store at {tracking_uri()}")
    connect()
    try:
        if model is not None:
            client = mlflow.MlflowClient()
            name, version, alias = model
            entry = client.get_model_version(name, version) if version else client.get_model_version_by_alias(name, alias)
            run_id = entry.run_id
        target = tempfile.mkdtemp(prefix="cnntree-model-")
        atexit.register(shutil.rmtree, target, ignore_errors=True)
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="classifier", dst_path=target))
    except Exception as error:  # MLflow raises several types for an unknown run or a missing artifact
        raise CnnTreeError(f"{reference}: neither a model directory nor a {'registered model' if model else 'run'} "
                           f"with a classifier in {tracking_uri()} ({type(error).__name__})") from None
