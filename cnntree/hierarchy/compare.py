"""Compare hierarchies under one budget: every spec trained with the same data, seeds and epochs,
ranked on PrivateTest with a paired test against the best.

Each (spec, seed) is one ``cnntree train`` (``run_experiment``): an MLflow parent run with its
node runs, all in one experiment. The paired test is McNemar's exact test on the PrivateTest
faces: the faces one spec gets right and the other wrong, pooled over seeds.
"""

from __future__ import annotations

import numpy as np

from ..errors import CnnTreeError

TEST_SPLIT = "PrivateTest"


def mcnemar(right_a: np.ndarray, right_b: np.ndarray) -> dict:
    """Exact McNemar test of two classifiers' paired correctness (boolean arrays over the same faces)."""
    from scipy.stats import binomtest

    only_a = int(np.sum(right_a & ~right_b))
    only_b = int(np.sum(~right_a & right_b))
    p = binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"only_best_right": only_a, "only_this_right": only_b, "p_value": float(p)}


def compare_specs(specs, data_path=None, seeds: int = 1, epochs=None, quick=False, experiment="compare-trees",
                  jobs=1, ray=None, printer=print) -> dict:
    """Train every spec under one budget and seeds, in one MLflow experiment, and rank them on PrivateTest."""
    import hashlib

    from ..data import load_for_spec
    from ..spec import with_overrides
    from ..tracking.experiment import run_experiment
    from ..tracking.store import RUNS

    classes = {tuple(s.classes) for s in specs}
    if len(classes) > 1:
        raise CnnTreeError("compare-trees: the specs have different classes; paired comparison needs the same "
                           f"classes and test faces: {' vs '.join(', '.join(c) for c in sorted(classes))}")
    names = [s.name for s in specs]
    if len(set(names)) < len(names):
        raise CnnTreeError(f"compare-trees: two specs are named \"{max(names, key=names.count)}\"; give each its own name")
    data, splits = load_for_spec(with_overrides(specs[0], data=data_path))
    if TEST_SPLIT not in splits.tests:
        raise CnnTreeError(f"{data.source}: no {TEST_SPLIT} split to compare on")
    test = splits.tests[TEST_SPLIT]
    truth = data.labels[test]
    rows = []
    for spec in specs:
        runs = []
        for seed in range(seeds):
            printer(f"== {spec.name}, seed {seed} ==")
            folder = RUNS / "work" / f"compare-{hashlib.sha1(experiment.encode()).hexdigest()[:10]}"
            outcome = run_experiment(with_overrides(spec, data=data_path, epochs=epochs, quick=quick or None, seed=seed),
                                     experiment=experiment, work_dir=folder / f"{spec.name}-seed{seed}", jobs=jobs,
                                     ray=ray, printer=printer)
            runs.append({"seed": seed, "run_id": outcome.run_id, "metrics": outcome.metrics,
                         "right": outcome.classifier.predict(data.images[test]) == truth})
        rows.append(_summary(spec, runs))
    best = max(rows, key=lambda r: r["accuracy_mean"])
    for row in rows:
        row["vs_best"] = None if row is best else mcnemar(np.concatenate(best["_rights"]), np.concatenate(row["_rights"]))
    for row in rows:
        del row["_rights"]
    rows.sort(key=lambda r: -r["accuracy_mean"])
    return {"experiment": experiment, "seeds": seeds, "epochs": epochs, "quick": quick, "test_faces": int(len(test)),
            "best": best["spec"], "rows": rows}


def _summary(spec, runs) -> dict:
    def stat(key):
        values = np.array([r["metrics"][key] for r in runs if key in r["metrics"]], float)
        return (float(values.mean()), float(values.std())) if len(values) else (None, None)

    from ..compose.metrics import split_prefix

    prefix = split_prefix(TEST_SPLIT)
    row = {"spec": spec.name, "kind": spec.kind, "networks": len(spec.nodes), "runs": [r["run_id"] for r in runs]}
    for key, name in ((f"{prefix}_accuracy", "accuracy"), (f"{prefix}_macro_f1", "macro_f1"),
                      (f"{prefix}_hierarchical_f1", "hierarchical_f1"), ("train_seconds", "train_seconds"),
                      ("images_seen", "images_seen"), ("parameters", "parameters"),
                      ("multiply_adds", "multiply_adds")):
        row[f"{name}_mean"], row[f"{name}_std"] = stat(key)
    row["_rights"] = [r["right"] for r in runs]
    return row


def ranking_table(result: dict) -> str:
    """The ranking as a fixed-width table for people."""
    head = (f"{'rank':4s} {'spec':28s} {'kind':6s} {'acc (mean+-std)':>17s} {'macro-F1':>17s} {'hier. F1':>8s} "
            f"{'train s':>8s} {'images seen':>12s} {'params':>9s} {'MMACs':>7s}  vs best (McNemar)")
    lines = [head]
    for k, r in enumerate(result["rows"], 1):
        hier = f"{r['hierarchical_f1_mean']:.4f}" if r["hierarchical_f1_mean"] is not None and r["kind"] == "tree" else "-"
        test = r["vs_best"]
        versus = "best" if test is None else (f"p={test['p_value']:.3g} ({test['only_best_right']} vs "
                                               f"{test['only_this_right']} faces only one gets right)")
        lines.append(f"{k:<4d} {r['spec'][:28]:28s} {r['kind']:6s} {r['accuracy_mean']:8.4f}+-{r['accuracy_std']:.4f} "
                     f"{r['macro_f1_mean']:8.4f}+-{r['macro_f1_std']:.4f} {hier:>8s} {r['train_seconds_mean']:8.0f} "
                     f"{r['images_seen_mean']:12.0f} {r['parameters_mean'] or 0:9.0f} "
                     f"{(r['multiply_adds_mean'] or 0) / 1e6:7.1f}  {versus}")
    return "\n".join(lines)
