"""compare-trees: one experiment, one parent run per spec and seed, a ranking with a paired test."""

import json

import numpy as np
import pytest

from cnntree.cli import main
from cnntree.hierarchy.compare import mcnemar

from .conftest import TINY_MODEL


def test_mcnemar_exact_values():
    a = np.array([True] * 10 + [False] * 2 + [True] * 5)
    b = np.array([False] * 10 + [True] * 2 + [True] * 5)
    result = mcnemar(a, b)
    assert (result["only_reference_right"], result["only_this_right"]) == (10, 2)
    assert result["p_value"] == pytest.approx(0.03857, abs=1e-4)  # 2 * P(X <= 2), X ~ Bin(12, 1/2)
    assert mcnemar(a, a)["p_value"] == 1.0


def _spec(tmp_path, name, nodes=None, kind="tree"):
    raw = {"name": name, "kind": kind,
           "defaults": {"model": TINY_MODEL, "train": {"epochs": 1, "batch_size": 64}}}
    if nodes:
        raw["nodes"] = nodes
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.slow
def test_compare_trees_ranks_specs_over_seeds_in_one_experiment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.chdir(tmp_path)
    tree = _spec(tmp_path, "two_level", [{"id": "root", "children": ["happy", "rest"]},
                                         {"id": "rest", "children": ["angry", "disgust", "fear", "sad", "surprise",
                                                                     "neutral"], "balance": "none"}])
    flat = _spec(tmp_path, "flat", kind="single")
    assert main(["compare-trees", str(tree), str(flat), "--seeds", "2", "--experiment", "duel", "--against", "flat",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["spec"] for r in result["rows"]] == sorted(["two_level", "flat"], key=lambda n: -next(
        r["accuracy_mean"] for r in result["rows"] if r["spec"] == n))
    best, other = result["rows"]
    by_spec = {r["spec"]: r for r in result["rows"]}
    assert result["reference"] == "flat" and by_spec["flat"]["vs_reference"] is None  # --against: the flat network
    test = by_spec["two_level"]["vs_reference"]
    right = {name: int(np.round(by_spec[name]["accuracy_mean"] * 245 * 2)) for name in by_spec}  # pooled over seeds
    assert test["only_this_right"] - test["only_reference_right"] == right["two_level"] - right["flat"]
    assert result["test_faces"] == 245 and all(len(r["runs"]) == 2 for r in result["rows"])
    assert by_spec["two_level"]["hierarchical_f1_mean"] is not None
    # images seen = training faces x epochs, summed over networks: the tree sees more for the same epochs
    assert by_spec["two_level"]["images_seen_mean"] > by_spec["flat"]["images_seen_mean"] > 0
    for cost in ("parameters_mean", "multiply_adds_mean"):  # two networks of the flat one's size, heads aside
        assert 1.5 * by_spec["flat"][cost] < by_spec["two_level"][cost] < 2.5 * by_spec["flat"][cost]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("duel")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 4 and {r.info.status for r in parents} == {"FINISHED"}
    assert sorted(r.info.run_id for r in parents) == sorted(best["runs"] + other["runs"])
    assert len(runs) == 4 + 2 * 2 + 2 * 1  # the node runs nested under their parents
    seeds = sorted({(r.data.params["name"], v) for r in parents for k, v in r.data.params.items()
                    if k.endswith(".train.seed")})
    assert seeds == [("flat", "0"), ("flat", "1"), ("two_level", "0"), ("two_level", "1")]


def test_compare_trees_needs_the_same_classes(tmp_path, capsys):
    six = tmp_path / "six.json"
    six.write_text(json.dumps({"name": "six", "kind": "single", "data": {"drop": ["disgust"]},
                               "classes": ["angry", "fear", "happy", "sad", "surprise", "neutral"]}))
    flat = _spec(tmp_path, "flat", kind="single")
    assert main(["compare-trees", str(six), str(flat)]) == 2
    assert "the specs have different classes" in capsys.readouterr().err


def test_compare_trees_against_a_spec_it_does_not_have_is_a_one_line_error(tmp_path, capsys):
    tree, flat = _spec(tmp_path, "tree_a", kind="single"), _spec(tmp_path, "flat", kind="single")
    assert main(["compare-trees", str(tree), str(flat), "--against", "flatt"]) == 2
    assert capsys.readouterr().err.strip().endswith('--against: no spec named "flatt" among tree_a, flat')
