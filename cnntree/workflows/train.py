"""Tracked experiments: what ``cnntree train`` and ``cnntree transfer`` run.

A training is data -> fit every network -> evaluate each test split -> log and save: one MLflow
parent run, a nested run per network, the test metrics under one vocabulary, the reports and
pictures, the saved classifier and its pyfunc model. A transfer is one parent run with a nested
run per cross-validation fold. ``bench/accuracy.py`` and ``compare-trees`` reuse them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import mlflow

from ..backend import where_training_runs
from ..compose.answers import answer_metrics
from ..data import load_for_spec
from ..data.load import dataset_name
from ..data.nodedata import node_dataset
from ..errors import CnnTreeError
from ..estimator.classifier import CnnTreeClassifier
from ..estimator.storage import check_model_folder, copy_model, save
from ..evaluation.metrics import evaluate, headline
from ..evaluation.reports import write_evaluation
from ..files import check_output_folder, mark, remove_marked, try_lock, write_text_atomically
from ..models import model_dir
from ..nets import pace
from ..nets.cost import multiply_adds, network_multiply_adds, parameters
from ..nets.parallel import make_runner
from ..nets.train import duration
from ..plots import draw_hierarchy
from ..spec import Spec, trains_first
from ..tracking import runs, store
from ..tracking.pyfunc import log_pyfunc
from ..training.flatstart import check_init_source


@dataclass
class Outcome:
    """What a tracked training produced: its run, classifier, test results and final metrics."""

    run_id: str
    experiment: str
    tracking_uri: str
    classifier: CnnTreeClassifier
    experiment_id: str = ""
    results: dict = field(default_factory=dict)  # test split -> evaluate() result
    probabilities: dict = field(default_factory=dict)  # test split -> class probabilities (the default mode's)
    metrics: dict = field(default_factory=dict)  # the parent run's final metrics
    compared: list = field(default_factory=list)  # this run and the other finished parents on the same data
    out: str | None = None  # where the classifier was kept, with ``out``
    registered: str | None = None  # the model registry version, with ``register``
    registered_uri: str | None = None  # ``models:/<name>/<version>``


def run_experiment(spec: Spec, experiment=None, work_dir=None, resume=False, out=None, jobs=1, ray=None,
                   printer=print, register: str | None = None) -> Outcome:
    """Train ``spec`` (its overrides already applied, see :func:`cnntree.spec.with_overrides`), evaluate
    it on every test split, log it all to MLflow; ``out`` also keeps the classifier there, and
    ``register`` registers it in MLflow's model registry under that name."""
    make_runner(jobs, ray).check()
    init = spec.init_source()  # every input is checked before a checkpoint is deleted or a run starts
    if out:
        check_model_folder(out, reads=[init] if init and not trains_first(init) else ())
    if work_dir:  # the default work folder is known once claimed, below
        check_work_folder(Path(work_dir), out)
    check_init_source(spec, model_dir)
    quick = bool(spec.overrides.get("quick"))
    data, splits = load_for_spec(spec)
    where = where_training_runs()
    if where:
        printer(where)
    printer(f"data: {data.source}: " + ", ".join(f"{k} {v}" for k, v in splits.sizes().items()))
    printer(plan(spec, data, splits))
    experiment = experiment or dataset_name(spec.data_path())  # trees and networks on one data set side by side
    experiment_id = store.use_experiment(experiment)
    work, lock = claim_work_folder(Path(work_dir) if work_dir else None, store.RUNS / "work" / spec.name, resume,
                                   printer)
    try:
        check_work_folder(work, out)
        previous = runs.end_abandoned_run(work / "run.json", printer)
        if not resume:
            if (work / "training.json").exists():
                printer(f"starting afresh: removing the checkpoints of the previous training in {work} "
                        "(--resume continues it instead)")
            remove_marked(work, ("work",), "work folder")
        work.mkdir(parents=True, exist_ok=True)
        mark(work, "work")
        clf = CnnTreeClassifier(spec, work_dir=work, jobs=jobs, ray=ray, verbose=1)
        with mlflow.start_run(run_name=f"{spec.name}{' (quick)' if quick else ''}") as run, runs.killed_on_interrupt():
            write_text_atomically(work / "run.json", json.dumps({"run_id": run.info.run_id,
                                                                 "tracking_uri": store.tracking_uri()}))
            mlflow.set_tags({"cnntree.kind": spec.kind, "cnntree.spec": spec.name, "cnntree.quick": str(quick),
                             "cnntree.seed": str(spec.root.train["seed"]),
                             "cnntree.source": str(spec.source), "cnntree.work_dir": str(work.resolve())})
            if resume and previous:
                mlflow.set_tag("cnntree.resumed_from", previous)
            mlflow.log_params(runs.spec_params(spec))
            mlflow.log_params({"data.source": data.source, "quick": quick,
                               **{f"override.{k}": v for k, v in spec.overrides.items()}})
            mlflow.log_dict(spec.raw, "spec.json")
            runs.log_dataset(data, splits)
            mlflow.log_artifact(str(draw_hierarchy(spec, work / "hierarchy.png")))
            clf.fit(data.images[splits.train], data.labels[splits.train],
                    (data.images[splits.validation], data.labels[splits.validation]), network_run=runs.NetworkRun,
                    resolve_model=model_dir)
            if spec.trunk["shared"]:
                runs.log_shared_nodes(clf)
            outcome = Outcome(run.info.run_id, experiment, store.tracking_uri(), clf, experiment_id,
                              metrics={"train_seconds": clf.fit_seconds_, "train_images_seen": clf.images_seen_,
                                       **network_cost(clf)})
            for split, index in splits.tests.items():  # the networks run once per split for all it measures
                outputs = clf.network_outputs(data.images[index])
                result = evaluate(clf, outputs, data.labels[index])
                outcome.results[split] = result
                outcome.probabilities[split] = clf.combiner().combine(outputs)
                outcome.metrics.update(headline(result, split))
                for file in write_evaluation(result, spec.classes, split, work / "evaluation"):
                    mlflow.log_artifact(str(file), "evaluation")
            if {"PublicTest", "PrivateTest"} <= set(splits.tests):  # answers at 90% coverage (compose.answers)
                public, private = ((outcome.probabilities[split], data.labels[splits.tests[split]])
                                   for split in ("PublicTest", "PrivateTest"))
                outcome.metrics.update(answer_metrics(clf, public, private))
            mlflow.log_metrics(outcome.metrics)
            saved = save(clf, work / "classifier")
            mlflow.log_artifacts(str(saved), "classifier")
            model_uri = log_pyfunc(saved)
            runs.describe_children(run.info.run_id, experiment_id)
            if out:
                copy_model(saved, out)
                outcome.out = str(out)
            if register:
                outcome.registered = runs.register(model_uri, register)
                outcome.registered_uri = f"models:/{register}/{outcome.registered}"
        outcome.compared = runs.finished_parents_on(experiment_id, data.source, run.info.run_id)
    finally:
        lock.close()
    return outcome


def network_cost(clf) -> dict:
    """Parameters (a shared trunk once) and multiply-adds per face of every network together (soft
    routing and soft voting run them all). The bookkeeping metrics are named ``size_*`` and ``train_*``
    so that MLflow, which lists metrics alphabetically, shows the ``private_*`` and ``public_*`` test
    figures first."""
    models = list(clf.keras_models().values())
    return {"size_parameters": parameters(*models), "size_multiply_adds": multiply_adds(*models)}


def plan(spec: Spec, data, splits) -> str:
    """What a training will run, said before it starts: networks, epochs, early stopping,
    fine-tuning, and the time it takes at most at this machine's pace (``nets.pace``)."""
    epochs = sorted({node.train["epochs"] for node in spec.nodes})
    patience = sorted({node.train["early_stopping"] for node in spec.nodes})
    budget = str(epochs[0]) if len(epochs) == 1 else f"{epochs[0]}-{epochs[-1]}"
    if spec.trunk["shared"]:  # the nodes train only in the joint epochs
        where = "" if spec.trunk["branch_at"] is None else f", branching at {spec.trunk['branch_at']}"
        line = f"plan: {len(spec.nodes)} nodes on one shared trunk{where}"
    else:
        line = (f"plan: {len(spec.nodes)} network(s), {budget} epochs each"
                + (f" (fewer if validation loss stalls {patience[0]} epochs)" if patience[0] else ""))
    if spec.init_source() is not None:
        line += f", started from {spec.init_source()}"
    if spec.finetune["epochs"]:
        line += f", then {spec.finetune['epochs']} joint epochs"
    seconds, own = pace.estimate(training_work(spec, data, splits))
    return (line + f"; about {duration(seconds)} at most, at "
            + ("this machine's pace" if own else "a 2-core CPU's pace (this machine's own is measured as it trains)"))


def training_work(spec: Spec, data, splits) -> dict[str, float]:
    """Faces x multiply-adds x epochs of every network and of the joint epochs, by model family: the
    work ``plan`` times (a flat network trained first is not counted; a shared trunk's nodes train
    only in the joint epochs, each counted there as a whole network: an upper bound)."""
    work: dict[str, float] = {}
    for node in spec.nodes:
        cost = network_multiply_adds(node.model, len(node.groups), node.train["normalize"])
        faces = len(splits.train) * spec.finetune["epochs"]
        if not spec.trunk["shared"]:
            node_faces = len(node_dataset(node, data.labels, data.classes, splits.train).index)
            faces += min(node_faces, node.train["max_samples"] or node_faces) * node.train["epochs"]
        work[node.model["name"]] = work.get(node.model["name"], 0.0) + faces * cost
    return work


def new_model_folder(name: str) -> Path:
    """Where ``train`` keeps a classifier when no ``--out`` is given: ``runs/models/<spec name>``,
    or ``-2``, ``-3``, ... beside it when that exists, so a finished model is never replaced."""
    base = store.RUNS / "models" / name
    for k in range(1, 10000):
        folder = base if k == 1 else base.with_name(f"{name}-{k}")
        if not folder.exists() and not folder.is_symlink():
            return folder
    raise CnnTreeError(f"{base}: 10000 models of this spec; remove some")


def check_work_folder(work: Path, out) -> None:
    """A work folder is new, empty or one cnntree made, for ``--resume`` too (a folder of the user's
    own files never becomes cnntree's, which the next fresh training would delete), and apart from
    ``--out`` (a fresh training empties its work folder)."""
    check_output_folder(work, ("work",), "--work-dir")
    if out:
        target, folder = Path(out).absolute().resolve(), work.absolute().resolve()
        if target.is_relative_to(folder) or folder.is_relative_to(target):
            raise CnnTreeError(f"--out {out}: overlaps the work folder {work}, which a fresh training empties; "
                               "give --out a folder outside it")


def claim_work_folder(given: Path | None, default: Path, resume: bool, printer) -> tuple[Path, object]:
    """Lock the training's work folder. A busy default folder (another training of the same spec
    is running) gives way to ``<default>-2``, ``-3``, ...; a busy folder named with ``--work-dir``
    or one to ``--resume`` is an error: two trainings must never write one checkpoint."""
    candidates = [given] if given else [default] + [default.with_name(f"{default.name}-{k}") for k in range(2, 100)]
    for k, folder in enumerate(candidates):
        lock = try_lock(folder)
        if lock is not None:
            if k:
                printer(f"{default} is in use by another training; using {folder}")
            return folder, lock
        if resume or given:
            break
    raise CnnTreeError(f"{candidates[0]}: in use by another cnntree train; wait for it to end"
                       + ("" if resume or given else " or give --work-dir"))
