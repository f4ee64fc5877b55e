"""compare-trees: one experiment, one parent run per spec and seed, a ranking with a paired test."""

import json

import numpy as np
import pytest

from cnntree.cli import main
from cnntree.workflows.compare import mcnemar

from .helpers import TINY_MODEL


def test_mcnemar_exact_values():
    a = np.array([True] * 10 + [False] * 2 + [True] * 5)
    b = np.array([False] * 10 + [True] * 2 + [True] * 5)
    result = mcnemar(a, b)
    assert (result["only_reference_right"], result["only_this_right"]) == (10, 2)
    assert result["p_value"] == pytest.approx(0.03857, abs=1e-4)  # 2 * P(X <= 2), X ~ Bin(12, 1/2)
    assert mcnemar(a, a)["p_value"] == 1.0


def _spec(tmp_path, name, nodes=None, kind="tree"):
    raw = {"name": name, "kind": kind,
           "defaults": {"model": TINY_MODEL, "train": {"epochs": 1, "batch_size": 64, "max_samples": 300}}}
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
    # the logged runs ranked again later, from their saved classifiers: the same paired tests
    assert main(["compare", "--experiment", "duel", "--against", "flat", "--json"]) == 0
    again = {r["spec"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert again["two_level"]["vs_reference"] == by_spec["two_level"]["vs_reference"]
    assert again["flat"]["vs_reference"] is None and sorted(again["flat"]["runs"]) == sorted(by_spec["flat"]["runs"])
    # what hierarchies are for: the answers' specificity at 90% coverage (the flat network abstains)
    for name in ("flat", "two_level"):
        assert 0 <= by_spec[name]["specificity_90_mean"] <= 1
        assert again[name]["specificity_90_mean"] == pytest.approx(by_spec[name]["specificity_90_mean"])
    assert main(["compare", "--experiment", "duel", "--against", "nope"]) == 2
    assert 'no finished runs of "nope"; there are flat, two_level' in capsys.readouterr().err


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


TWO_LEVEL = [{"id": "root", "children": ["happy", "rest"]},
             {"id": "rest", "children": ["angry", "disgust", "fear", "sad", "surprise", "neutral"]}]


def test_a_budget_in_epochs_counts_the_flat_network_the_nodes_and_the_joint_epochs(tmp_path):
    from cnntree import CnnTreeClassifier, save_model
    from cnntree.errors import CnnTreeError
    from cnntree.nets.models import create_model
    from cnntree.spec import load_spec, parse_spec, with_overrides
    from cnntree.training.flatstart import _flat_spec
    from cnntree.workflows.compare import budget_overrides

    def spec(**top):
        return parse_spec({"name": "t", "kind": "tree", "nodes": TWO_LEVEL, **top, "defaults": {
            "model": TINY_MODEL, "train": {"epochs": 3}}}, base_dir=tmp_path)

    flat = load_spec(_spec(tmp_path, "flat", kind="single"))
    assert budget_overrides(flat, 5) == {"epochs": 5}
    assert budget_overrides(spec(), 5) == {"epochs": 5}
    joint = spec(finetune={"epochs": 2})
    assert budget_overrides(joint, 5) == {"epochs": 3}
    assert [n.train["epochs"] for n in with_overrides(joint, epochs=3).nodes] == [3, 3]
    # a flat network trained first takes what the nodes (3) and the joint epochs (2) leave
    warm = spec(init={"from": "flat.json"}, finetune={"epochs": 2})
    assert budget_overrides(warm, 10) == {"flat_epochs": 5}
    given = with_overrides(warm, flat_epochs=5)
    assert _flat_spec(given, given.init_source(), "init").root.train["epochs"] == 5
    assert [n.train["epochs"] for n in given.nodes] == [3, 3] and given.finetune["epochs"] == 2
    # a saved flat network counts the epochs its history records; a shared trunk's joint epochs take the rest
    net = create_model(n_outputs=7, **TINY_MODEL)
    saved = save_model(CnnTreeClassifier.from_networks(flat, {"net": net}, histories={"net": {"loss": [1.0] * 4}}),
                       tmp_path / "saved")
    shared = spec(init={"from": str(saved)}, trunk={"shared": True}, finetune={"epochs": 1})
    assert budget_overrides(shared, 7) == {"finetune_epochs": 3}
    assert with_overrides(shared, finetune_epochs=3).finetune["epochs"] == 3
    assert budget_overrides(spec(init={"from": str(saved)}, finetune={"epochs": 1}), 9) == {"epochs": 4}
    with pytest.raises(CnnTreeError, match=r"--budget-epochs 4: too few for t: 4 spent by .*saved, none left for its "
                                           r"finetune epochs$"):
        budget_overrides(shared, 4)
    assert with_overrides(flat, finetune_epochs=3).finetune["epochs"] == 0  # a single network has no joint stage


@pytest.mark.slow  # trains
def test_compare_trees_under_a_budget_trains_each_spec_to_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.chdir(tmp_path)
    raw = {"name": "joint", "kind": "tree", "nodes": TWO_LEVEL, "finetune": {"epochs": 1},
           "defaults": {"model": TINY_MODEL, "train": {"epochs": 5, "batch_size": 64, "max_samples": 300}}}
    (tmp_path / "joint.json").write_text(json.dumps(raw))
    flat = _spec(tmp_path, "flat", kind="single")
    assert main(["compare-trees", str(tmp_path / "joint.json"), str(flat), "--budget-epochs", "3", "--json"]) == 0
    rows = {r["spec"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["flat"]["budget"] == {"epochs": 3} and rows["joint"]["budget"] == {"epochs": 2}
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("compare-trees").experiment_id])
    epochs = {r.info.run_name: len(client.get_metric_history(r.info.run_id, "loss")) for r in runs
              if "mlflow.parentRunId" in r.data.tags}
    assert epochs == {"net": 3, "root": 2, "rest": 2, "finetune": 1}
    with pytest.raises(SystemExit, match="2"):  # one budget at a time
        main(["compare-trees", str(flat), "--budget-epochs", "3", "--epochs", "2"])
    assert "--epochs: not allowed with argument --budget-epochs" in capsys.readouterr().err


def test_paired_tests_pair_runs_of_the_same_seed_only():
    from cnntree.workflows.compare import rank

    right = np.array([True, True, False, False])
    rows = [{"spec": "flat", "accuracy_mean": 0.5, "_rights": {"0": right, "1": ~right}},
            {"spec": "tree", "accuracy_mean": 0.75, "_rights": {"1": np.array([True, True, True, False])}},
            {"spec": "other", "accuracy_mean": 0.25, "_rights": {"7": right}}]
    best, reference = rank(rows, "flat")
    assert best["spec"] == "tree" and reference["spec"] == "flat"
    by_spec = {r["spec"]: r["vs_reference"] for r in rows}
    # seed 1 only: flat right on faces 2-3, the tree on 0-2
    assert (by_spec["tree"]["only_reference_right"], by_spec["tree"]["only_this_right"]) == (1, 2)
    assert by_spec["tree"]["seeds_paired"] == 1 and by_spec["other"]["seeds_paired"] == 0
    assert by_spec["flat"] is None and all("_rights" not in r for r in rows)
