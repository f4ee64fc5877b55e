"""Compare hierarchies under one budget: every spec trained with the same data, seeds and epochs,
ranked on PrivateTest with a paired test against the best (or against a named spec: the flat
network a tree should beat).

Each (spec, seed) is one ``cnntree train`` (``run_experiment``): an MLflow parent run with its
node runs, all in one experiment. The paired test is McNemar's exact test on the PrivateTest
faces: the faces one spec gets right and the other wrong, pooled over seeds.
"""

from __future__ import annotations

import numpy as np

from ..compose import answers
from ..data import load_for_spec
from ..data.splits import split_prefix
from ..errors import CnnTreeError
from ..hierarchy.controls import control_spec
from ..models import load_model, model_dir
from ..spec import trains_first, with_overrides
from ..tracking.store import RUNS
from ..training.flatstart import epochs_spent
from .train import run_experiment

TEST_SPLIT = "PrivateTest"
CALIBRATION_SPLIT = "PublicTest"  # where the answers' threshold is calibrated (compose.answers)
SPECIFICITY_90 = "private_answers_specificity_90"  # mean specificity of the answers at 90% coverage


def mcnemar(right_a: np.ndarray, right_b: np.ndarray) -> dict:
    """Exact McNemar test of two classifiers' paired correctness (boolean arrays over the same faces)."""
    from scipy.stats import binomtest

    only_a = int(np.sum(right_a & ~right_b))
    only_b = int(np.sum(~right_a & right_b))
    p = binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"only_reference_right": only_a, "only_this_right": only_b, "p_value": float(p)}


def budget_overrides(spec, budget: int) -> dict:
    """The epoch override that gives ``spec`` ``budget`` epochs in all, counted along its stages: a
    flat network it starts from (trained first here, or saved: the epochs it trained), its networks'
    own training (a tree's nodes in parallel count once: the most epochs of any), the joint
    fine-tuning. The first stage this training runs takes what the others leave: the flat network
    when the spec trains it first, else the networks, else (a shared trunk) the fine-tuning. So a
    flat network gets the epochs a tree spends on warm-up and fine-tuning."""

    source, joint = spec.init_source(), spec.finetune["epochs"]
    nodes = 0 if spec.trunk["shared"] else max(node.train["epochs"] for node in spec.nodes)
    if source is not None and trains_first(source):
        key, left, others = "flat_epochs", budget - nodes - joint, f"{nodes} for the networks, {joint} joint"
    else:
        spent = epochs_spent(source, model_dir) if source is not None else 0
        key = "finetune_epochs" if spec.trunk["shared"] else "epochs"
        left = budget - spent - (0 if spec.trunk["shared"] else joint)
        parts = ([f"{spent} spent by {source}"] if source is not None else []) + \
            ([] if spec.trunk["shared"] else [f"{joint} joint"])
        others = ", ".join(parts)
    if left < 1:
        raise CnnTreeError(f"--budget-epochs {budget}: too few for {spec.name}: {others}, none left for its "
                           f"{key.replace('_', ' ')}")
    return {key: left}


def compare_specs(specs, data_path=None, seeds: int = 1, epochs=None, quick=False, experiment="compare-trees",
                  jobs=1, ray=None, printer=print, against: str | None = None, budget_epochs: int | None = None,
                  controls: bool = False) -> dict:
    """Train every spec under one budget and seeds, in one MLflow experiment, and rank them on
    PrivateTest; each row's paired test is against the spec named ``against`` (default: the best).
    ``epochs`` gives every network the same epochs; ``budget_epochs`` every spec the same total
    (``budget_overrides``); ``controls`` adds each branched tree's equal-cost flat network
    (``hierarchy.controls``)."""
    import hashlib


    matched = {}
    for spec in list(specs) if controls else []:
        found = control_spec(spec, model_dir)
        if found is not None and found[0].name not in {s.name for s in specs}:
            specs = [*specs, found[0]]
            matched[found[0].name] = found[1]

    classes = {tuple(s.classes) for s in specs}
    if len(classes) > 1:
        raise CnnTreeError("compare-trees: the specs have different classes; paired comparison needs the same "
                           f"classes and test faces: {' vs '.join(', '.join(c) for c in sorted(classes))}")
    names = [s.name for s in specs]
    if len(set(names)) < len(names):
        raise CnnTreeError(f"compare-trees: two specs are named \"{max(names, key=names.count)}\"; give each its own name")
    if against is not None and against not in names:
        raise CnnTreeError(f"--against: no spec named \"{against}\" among {', '.join(names)}")
    if budget_epochs is not None and (epochs is not None or quick):
        raise CnnTreeError("--budget-epochs sets every spec's epochs: give it without --epochs and --quick")
    budgets = [budget_overrides(spec, budget_epochs) if budget_epochs else {} for spec in specs]
    data, splits = load_for_spec(with_overrides(specs[0], data=data_path))
    if TEST_SPLIT not in splits.tests:
        raise CnnTreeError(f"{data.source}: no {TEST_SPLIT} split to compare on")
    test = splits.tests[TEST_SPLIT]
    truth = data.labels[test]
    rows = []
    for spec, budget in zip(specs, budgets):
        runs = []
        for seed in range(seeds):
            printer(f"== {spec.name}, seed {seed} ==")
            folder = RUNS / "work" / f"compare-{hashlib.sha1(experiment.encode()).hexdigest()[:10]}"
            given = {"data": data_path, "epochs": epochs, "quick": quick or None, "seed": seed, **budget}
            outcome = run_experiment(with_overrides(spec, **given),
                                     experiment=experiment, work_dir=folder / f"{spec.name}-seed{seed}", jobs=jobs,
                                     ray=ray, printer=printer)
            runs.append({"seed": seed, "run_id": outcome.run_id, "metrics": outcome.metrics,
                         "right": outcome.probabilities[TEST_SPLIT].argmax(axis=1) == truth})
        rows.append({**summary(spec, runs), "budget": budget, "control": matched.get(spec.name)})
    best, reference = rank(rows, against)
    return {"experiment": experiment, "seeds": seeds, "epochs": epochs, "budget_epochs": budget_epochs, "quick": quick,
            "test_faces": int(len(test)),
            "best": best["spec"], "reference": reference["spec"], "rows": rows}


def answer_metrics(clf, data, calibration, test, proba) -> dict:
    """The answers' metrics at 90% coverage (``compose.answers.answer_metrics``), calibrated on
    PublicTest and measured on PrivateTest (``proba``: the classifier's probabilities there);
    nothing without a PublicTest split."""
    if calibration is None:
        return {}

    return answers.answer_metrics(clf, (clf.predict_proba(data.images[calibration]), data.labels[calibration]),
                                  (proba, data.labels[test]), 0.9)


def rank(rows: list[dict], against: str | None = None) -> tuple[dict, dict]:
    """Sort ``summary`` rows by mean accuracy and test each against the row of spec ``against``
    (default: the best), pairing runs of the same seed and pooling their test faces (a seed only one
    side has is left out: ``seeds_paired`` says how many were paired); returns (best, reference)."""
    best = max(rows, key=lambda r: r["accuracy_mean"])
    reference = best if against is None else next(r for r in rows if r["spec"] == against)
    for row in rows:
        seeds = sorted(set(reference["_rights"]) & set(row["_rights"]))
        row["vs_reference"] = None if row is reference else {
            **mcnemar(np.concatenate([reference["_rights"][s] for s in seeds] or [np.zeros(0, bool)]),
                      np.concatenate([row["_rights"][s] for s in seeds] or [np.zeros(0, bool)])),
            "seeds_paired": len(seeds)}
    for row in rows:
        del row["_rights"]
    rows.sort(key=lambda r: -r["accuracy_mean"])
    return best, reference


def summary(spec, runs) -> dict:
    """One spec's row over its runs (each: metrics and ``right``, its correctness per test face)."""
    def stat(key):
        values = np.array([r["metrics"][key] for r in runs if key in r["metrics"]], float)
        return (float(values.mean()), float(values.std())) if len(values) else (None, None)


    prefix = split_prefix(TEST_SPLIT)
    row = {"spec": spec.name, "kind": spec.kind, "networks": len(spec.nodes), "runs": [r["run_id"] for r in runs]}
    for key, name in ((f"{prefix}_accuracy", "accuracy"), (f"{prefix}_macro_f1", "macro_f1"),
                      (f"{prefix}_hierarchical_f1", "hierarchical_f1"), ("train_seconds", "train_seconds"),
                      ("train_images_seen", "images_seen"), ("size_parameters", "parameters"),
                      ("size_multiply_adds", "multiply_adds"), (SPECIFICITY_90, "specificity_90")):
        row[f"{name}_mean"], row[f"{name}_std"] = stat(key)
    row["_rights"] = {str(r["seed"]): r["right"] for r in runs}  # by seed: paired with the reference's
    return row


def rank_logged_runs(runs: list[dict], against: str, data_path=None) -> dict:
    """Rank finished, full-budget runs already logged (``tracking.runs.finished_runs``, from one or
    several experiments) as compare-trees ranks its own: each spec's runs pooled over seeds, McNemar
    against the spec ``against`` on the same PrivateTest faces; each classifier is loaded from its
    run. A spec name found in several experiments becomes ``NAME@EXPERIMENT`` (different settings
    may share a name)."""

    quick = {r["spec"] for r in runs if r["status"] == "FINISHED" and r["quick"]}
    runs = [r for r in runs if r["status"] == "FINISHED" and not r["quick"]]
    homes: dict[str, set] = {}
    for run in runs:
        homes.setdefault(run["spec"], set()).add(run["experiment_name"])
    groups: dict[str, list] = {}
    for run in runs:
        label = run["spec"] if len(homes[run["spec"]]) == 1 else f"{run['spec']}@{run['experiment_name']}"
        groups.setdefault(label, []).append(run)
    if against not in groups:
        if against in quick:
            raise CnnTreeError(f"--against: \"{against}\" has only --quick runs, which a comparison leaves out "
                               "(a smoke run's accuracy says nothing); train it without --quick")
        raise CnnTreeError(f"--against: no finished runs of \"{against}\"; there are {', '.join(sorted(groups)) or 'none'}")
    rows, faces = [], None
    for label, group in groups.items():
        for run in group:
            clf = load_model(run["run_id"])
            if faces is None:
                data, splits = load_for_spec(with_overrides(clf.spec_, data=data_path))
                if TEST_SPLIT not in splits.tests:
                    raise CnnTreeError(f"{data.source}: no {TEST_SPLIT} split to compare on")
                faces, truth, classes = data.images[splits.tests[TEST_SPLIT]], data.labels[splits.tests[TEST_SPLIT]], clf.spec_.classes
                calibration, test = splits.tests.get(CALIBRATION_SPLIT), splits.tests[TEST_SPLIT]
            if clf.spec_.classes != classes:
                raise CnnTreeError(f"run {run['run_id']} ({label}): classes {list(clf.spec_.classes)} differ from "
                                   f"{list(classes)}; paired tests need the same test faces")
            proba = clf.predict_proba(faces)
            run["right"] = proba.argmax(axis=1) == truth
            if SPECIFICITY_90 not in run["metrics"]:  # a run logged before trainings logged it
                run["metrics"] = {**run["metrics"], **answer_metrics(clf, data, calibration, test, proba)}
        rows.append({**summary(clf.spec_, group), "spec": label})
    best, reference = rank(rows, against)
    return {"test_faces": int(len(truth)), "best": best["spec"], "reference": reference["spec"], "rows": rows}


def ranking_table(result: dict) -> str:
    """The ranking as a fixed-width table for people."""
    width = max(28, *(len(r["spec"]) for r in result["rows"]))
    head = (f"{'rank':4s} {'spec':{width}s} {'kind':6s} {'acc (mean+-std)':>17s} {'macro-F1':>17s} {'hier. F1':>8s} "
            f"{'spec@90':>7s} {'train s':>8s} {'images seen':>12s} {'params':>9s} {'MMACs':>7s}  vs {result['reference']} (McNemar)")
    lines = [head]
    for k, r in enumerate(result["rows"], 1):
        hier = f"{r['hierarchical_f1_mean']:.4f}" if r["hierarchical_f1_mean"] is not None and r["kind"] == "tree" else "-"
        test = r["vs_reference"]
        versus = ("reference" if test is None else "no seed in common" if not test["seeds_paired"] else
                  f"p={test['p_value']:.3g} ({test['only_reference_right']} vs "
                                               f"{test['only_this_right']} faces only one gets right)")
        lines.append(f"{k:<4d} {r['spec']:{width}s} {r['kind']:6s} {r['accuracy_mean']:8.4f}+-{r['accuracy_std']:.4f} "
                     f"{r['macro_f1_mean']:8.4f}+-{r['macro_f1_std']:.4f} {hier:>8s} "
                     f"{'-' if r.get('specificity_90_mean') is None else format(r['specificity_90_mean'], '.4f'):>7s} "
                     f"{r['train_seconds_mean'] or 0:8.0f} "
                     f"{r['images_seen_mean']:12.0f} {r['parameters_mean'] or 0:9.0f} "
                     f"{(r['multiply_adds_mean'] or 0) / 1e6:7.1f}  {versus}")
    for r in result["rows"]:
        if r.get("control"):
            c = r["control"]
            lines.append(f"{r['spec']}: the equal-cost control of {c['control_of']} (width {c['width']:g}: "
                         f"{c['multiply_adds'] / 1e6:.2f}M multiply-adds per face, the tree {c['tree_multiply_adds'] / 1e6:.2f}M)")
    return "\n".join(lines)
