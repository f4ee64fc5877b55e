"""One tracked experiment: data -> fit every network -> evaluate each test split -> log and save.

This is what ``cnntree train`` runs (and ``bench/accuracy.py`` reuses): one MLflow parent run,
a nested run per network, the test metrics under one vocabulary, the reports and pictures, the
saved classifier and its pyfunc model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import mlflow

from . import tracking
from .classifier import MODEL_KINDS, CnnTreeClassifier
from .data import load_for_spec
from .errors import CnnTreeError
from .evaluate import evaluate, headline
from .files import check_output_folder, mark, remove_marked, try_lock, write_text_atomically
from .parallel import make_runner
from .plots import draw_confusion, draw_hierarchy
from .spec import Spec, with_training


@dataclass
class Outcome:
    run_id: str
    experiment: str
    tracking_uri: str
    classifier: CnnTreeClassifier
    experiment_id: str = ""
    results: dict = field(default_factory=dict)  # test split -> evaluate() result
    metrics: dict = field(default_factory=dict)  # the parent run's final metrics


def run_experiment(spec: Spec, data_path=None, epochs=None, quick=False, seed=None, experiment=None, work_dir=None,
                   resume=False, skip_bad=None, out=None, jobs=1, ray=None, workers=None, printer=print) -> Outcome:
    make_runner(jobs, ray).check()
    if out:
        check_output_folder(out, MODEL_KINDS)  # before hours of training, not after
    spec = with_training(spec, seed=seed, workers=workers)
    data, splits = load_for_spec(spec, data_path, skip_bad)
    printer(f"data: {data.source}: " + ", ".join(f"{k} {v}" for k, v in splits.sizes().items()))
    experiment = experiment or spec.name
    experiment_id = tracking.use_experiment(experiment)
    work, lock = claim_work_folder(Path(work_dir) if work_dir else None, tracking.RUNS / "work" / spec.name, resume,
                                   printer)
    try:
        previous = tracking.end_abandoned_run(work / "run.json")
        if not resume:
            if (work / "training.json").exists():
                printer(f"starting afresh: removing the checkpoints of the previous training in {work} "
                        "(--resume continues it instead)")
            remove_marked(work, ("work",), "work folder")
        work.mkdir(parents=True, exist_ok=True)
        mark(work, "work")
        clf = CnnTreeClassifier(spec, epochs=epochs, quick=quick, work_dir=work, jobs=jobs, ray=ray, printer=printer)
        with mlflow.start_run(run_name=f"{spec.name}{' (quick)' if quick else ''}") as run, \
                tracking.killed_on_interrupt():
            write_text_atomically(work / "run.json", json.dumps({"run_id": run.info.run_id,
                                                                 "tracking_uri": tracking.tracking_uri()}))
            mlflow.set_tags({"cnntree.kind": spec.kind, "cnntree.spec": spec.name, "cnntree.quick": str(quick),
                             "cnntree.seed": str(spec.root.train["seed"]),
                             "cnntree.source": str(spec.source), "cnntree.work_dir": str(work.resolve())})
            if resume and previous:
                mlflow.set_tag("cnntree.resumed_from", previous)
            mlflow.log_params(tracking.spec_params(spec))
            mlflow.log_params({"data.source": data.source, "epochs_override": epochs, "quick": quick})
            mlflow.log_dict(spec.raw, "spec.json")
            tracking.log_dataset(data, splits)
            mlflow.log_artifact(str(draw_hierarchy(spec, work / "hierarchy.png")))
            clf.fit(data.images[splits.train], data.labels[splits.train],
                    (data.images[splits.validation], data.labels[splits.validation]), network_run=tracking.NetworkRun)
            outcome = Outcome(run.info.run_id, experiment, tracking.tracking_uri(), clf, experiment_id,
                              metrics={"train_seconds": clf.fit_seconds_,
                                       "images_seen": clf.images_seen_})
            for split, index in splits.tests.items():
                result = evaluate(clf, data.images[index], data.labels[index])
                outcome.results[split] = result
                outcome.metrics.update(headline(result, split))
                for file in write_evaluation(result, spec.classes, split, work / "evaluation"):
                    mlflow.log_artifact(str(file), "evaluation")
            mlflow.log_metrics(outcome.metrics)
            saved = clf.save(work / "classifier")
            mlflow.log_artifacts(str(saved), "classifier")
            tracking.log_pyfunc(saved)
            tracking.describe_children(run.info.run_id, experiment_id)
            if out:
                clf.save(out)
    finally:
        lock.close()
    return outcome


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


def write_evaluation(result: dict, classes, split: str, folder: Path) -> list[Path]:
    """Reports (JSON, text) and confusion-matrix pictures of one split; returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"{split}_report.json"]
    write_text_atomically(files[0], json.dumps(result, indent=2))
    text = []
    for mode, m in result["modes"].items():
        text.append(f"== {split}, {mode} ==\n" + report_text(m["report"]))
        files.append(draw_confusion(m["confusion"], classes, folder / f"{split}_{mode}_confusion.png",
                                    f"{split} ({mode}): counts"))
        files.append(draw_confusion(m["confusion"], classes, folder / f"{split}_{mode}_confusion_normalized.png",
                                    f"{split} ({mode}): recall per class", normalize=True))
    for node, report in result["nodes"].items():
        text.append(f"== {split}, network {node} on its own test data ==\n" + report_text(report["report"]))
    files.append(folder / f"{split}_report.txt")
    write_text_atomically(files[-1], "\n".join(text))
    return files


def report_text(report: dict) -> str:
    lines = [f"{'':28s} {'precision':>9s} {'recall':>9s} {'f1':>9s} {'support':>8s}"]
    for name, row in report.items():
        if isinstance(row, dict):
            lines.append(f"{name:28s} {row['precision']:9.3f} {row['recall']:9.3f} {row['f1-score']:9.3f} "
                         f"{int(row['support']):8d}")
    return "\n".join(lines) + f"\naccuracy {report['accuracy']:.4f}\n"
