"""Branched shared trunks (``trunk.branch_at``): the layers below the branch point are shared, each
node owns a copy of those above, the tree starts as its flat network, and at inference one network
runs the trunk once per face (Keras, exports, cost)."""

import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest

from cnntree import CnnTreeClassifier, load_model, save_model
from cnntree.compose.routing import SoftRouting
from cnntree.errors import CnnTreeError
from cnntree.nets.cost import multiply_adds, network_multiply_adds, parameters
from cnntree.nets.models import create_model
from cnntree.nets.train import as_input
from cnntree.nets.warmstart import weighted_layers
from cnntree.spec import parse_spec
from cnntree.training.flatstart import FlatStart
from cnntree.training.trunk import trunk_networks

from .helpers import ROOT, train_grown_tree

SMALL = {"name": "mini_xception", "width": 0.25, "l2": 0.0}  # 4 residual blocks, a few thousand weights
MORAVCIK = json.loads((ROOT / "trees" / "moravcik_shared_default.json").read_text())["nodes"]


def branched_spec(branch_at, flat=None, **finetune):
    return parse_spec({"name": "branched", "kind": "tree", "nodes": MORAVCIK, "init": {"from": str(flat or "x")},
                       "trunk": {"shared": True, "heads": "classes", "branch_at": branch_at},
                       "finetune": {"epochs": 1, "lr": 0.001, "loss": {"path": 1, "nodes": 0, "flat": 0}, **finetune},
                       "defaults": {"model": SMALL, "train": {"batch_size": 64, "seed": 3}}}, base_dir=".")


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    """A flat mini-Xception whose weights and BatchNormalization statistics differ weight by weight
    (its initial ones, each moved at random)."""
    keras.utils.set_random_seed(0)
    net = create_model(n_outputs=7, **SMALL)
    rng = np.random.default_rng(0)
    net.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in net.get_weights()])
    folder = tmp_path_factory.mktemp("flat")
    net.save(folder / "flat.keras")
    single = parse_spec({"name": "flat", "kind": "single", "defaults": {"model": SMALL}})
    save_model(CnnTreeClassifier.from_networks(single, {"net": net}), folder / "model")
    return folder / "flat.keras", net, folder / "model"


def built(branch_at, flat):
    spec = branched_spec(branch_at)
    networks, _ = trunk_networks(spec, FlatStart(flat[0], spec.classes), print)
    return CnnTreeClassifier.from_networks(spec, networks)


@pytest.mark.parametrize("branch_at, own_blocks", [(None, 0), (-1, 1), (-2, 2), ("block2", 2), (1, 4)])
def test_a_branched_tree_starts_as_its_flat_network(flat, sample, branch_at, own_blocks):
    clf = built(branch_at, flat)
    faces = sample.images[sample.splits == "PrivateTest"][:64]
    raw = clf.raw_outputs(faces)
    path = SoftRouting(clf.spec_).combine(raw)
    np.testing.assert_allclose(path, np.asarray(flat[1](as_input(faces))), atol=1e-4)
    models = list(clf.keras_models().values())
    shared = set.intersection(*({id(layer) for layer in weighted_layers(m)} for m in models))
    per_block = 6  # a residual block's weighted layers: shortcut conv and BN, two separable convs and BNs
    own = len(weighted_layers(flat[1])) - len(shared)
    assert own == 1 + per_block * own_blocks  # the output layer, and the blocks above the branch point
    for model in models:  # every node owns copies of the same layers, under its own names
        mine = [layer.name for layer in weighted_layers(model) if id(layer) not in shared]
        assert len(mine) == own and len({name.split("_")[0] for name in mine}) == 1


def test_the_cost_counts_a_shared_trunk_once(flat):
    one, heads, branched = (built(b, flat) for b in (None, None, -1))
    flat_macs = multiply_adds(flat[1])
    heads_macs = multiply_adds(*heads.keras_models().values())
    tree = [m for m in branched.keras_models().values()]
    head = weighted_layers(flat[1])[-1]
    per_output = head.output.shape[1] * head.output.shape[2] * head.input.shape[-1] * 9  # one 3x3 output channel
    outputs = sum(len(c) for node in heads.spec_.nodes for c in node.groups)  # class-read heads: a unit per class
    assert heads_macs == flat_macs - 7 * per_output + outputs * per_output  # one trunk, four small heads
    block = multiply_adds(flat[1]) - multiply_adds(keras.Model(flat[1].inputs, flat[1].get_layer("block3").output))
    assert multiply_adds(*tree) == heads_macs + 3 * (block - 7 * per_output)  # three more copies of the last block
    assert parameters(*tree) < sum(map(parameters, tree))  # the trunk's weights are counted once
    assert one.spec_.trunk["branch_at"] is None


@pytest.mark.slow  # two ONNX conversions
def test_the_one_pass_network_agrees_with_its_nodes_in_keras_and_onnx_and_runs_the_trunk_once(flat, sample, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx

    from cnntree.estimator.storage import export

    clf = built(-1, flat)
    rng = np.random.default_rng(1)
    for model in clf.keras_models().values():  # branches as after training: each its own weights (an exporter
        for layer in weighted_layers(model)[-7:]:  # merges identical copies of a layer on the same input)
            layer.set_weights([w * rng.uniform(0.9, 1.1, w.shape).astype(w.dtype) for w in layer.get_weights()])
    faces = sample.images[sample.splits == "PrivateTest"][:32]
    each = {node.id: clf._raw_output(node, faces) for node in clf.spec_.nodes}  # the nodes one by one
    together = clf.raw_outputs(faces)
    for node_id in each:
        np.testing.assert_allclose(together[node_id], each[node_id], atol=1e-6)
    folder = export(clf, tmp_path / "onnx", "onnx")
    assert sorted(p.name for p in (folder / "networks").iterdir()) == ["tree.onnx"]
    exported = load_model(folder)
    np.testing.assert_allclose(exported.predict_proba(faces), clf.predict_proba(faces), atol=1e-4)
    graph = onnx.load(folder / "networks" / "tree.onnx").graph
    convolutions = sum(node.op_type == "Conv" for node in graph.node)
    flat_file = tmp_path / "flat.onnx"
    flat[1].export(str(flat_file), format="onnx", verbose=False)
    flat_convolutions = sum(node.op_type == "Conv" for node in onnx.load(flat_file).graph.node)
    branch = 1 + 2 * 2 + 1  # the shortcut, two separable convolutions (depthwise and pointwise), the output layer
    assert convolutions == flat_convolutions + 3 * branch  # the trunk once, four branches
    again = load_model(save_model(clf, tmp_path / "keras"))
    assert sorted(p.name for p in (tmp_path / "keras" / "networks").iterdir()) == ["tree.keras"]
    np.testing.assert_allclose(again.predict_proba(faces), clf.predict_proba(faces), atol=1e-6)
    assert set(again.keras_models()) == {"NN1", "NN2", "NN3", "NN4"}


@pytest.mark.slow  # trains
def test_a_branched_tree_fine_tunes_its_branches_and_keeps_working_after_saving(flat, sample, tmp_path):
    spec = branched_spec(-1, flat=flat[2], trunk_lr=0.5, batchnorm="frozen")
    clf = CnnTreeClassifier(spec)
    start = built(-1, flat)
    train, val = sample.splits == "Training", sample.splits == "PublicTest"
    clf.fit(sample.images[train][:256], sample.labels[train][:256], (sample.images[val], sample.labels[val]))
    assert clf.finetune_["trunk_lr"] == 0.5 and clf.finetune_["batchnorm"] == "frozen"
    moved = [not np.allclose(a.get_weights()[0], b.get_weights()[0])
             for a, b in zip(weighted_layers(clf.keras_models()["NN3"]), weighted_layers(start.keras_models()["NN3"]))]
    assert any(moved)
    assert all(layer.trainable for layer in clf.keras_models()["NN1"].layers)  # unfrozen after training
    faces = sample.images[sample.splits == "PrivateTest"]
    again = load_model(save_model(clf, tmp_path / "model"))
    np.testing.assert_allclose(again.predict_proba(faces), clf.predict_proba(faces), atol=1e-6)


def test_branch_points_are_checked_with_their_json_path(flat):
    with pytest.raises(CnnTreeError, match=r"trunk.branch_at: says where a shared trunk branches"):
        parse_spec({"name": "s", "kind": "tree", "nodes": MORAVCIK, "trunk": {"branch_at": -1}})
    with pytest.raises(CnnTreeError, match=r"trunk.branch_at: blocks count from 1"):
        branched_spec(0)
    with pytest.raises(CnnTreeError, match=r"trunk.branch_at: expected a block index or a layer name, got"):
        branched_spec([1])
    with pytest.raises(CnnTreeError, match=r"trunk.branch_at: 5 is not a block of mini_xception, which has 4 "):
        built(5, flat)
    with pytest.raises(CnnTreeError, match=r'trunk.branch_at: mini_xception has no layer "blok3" \(did you '
                                           r'mean "block3"\?\); its blocks end at block1, block2, block3, block4'):
        built("blok3", flat)
    with pytest.raises(CnnTreeError, match=r"finetune.trunk_lr: slows a shared trunk"):
        parse_spec({"name": "s", "kind": "tree", "nodes": MORAVCIK, "finetune": {"epochs": 1, "trunk_lr": 0.1}})


@pytest.mark.slow  # trains
def test_the_branched_spec_trains_its_flat_network_then_the_tree_with_every_stage_a_child_run(tmp_path, capsys):
    runs = train_grown_tree(tmp_path, "moravcik_branched.json", SMALL)
    parent, children = runs.pop("parent"), runs
    assert re.search(r"plan: 4 nodes on one shared trunk, branching at -1, started from \S*flat.json, then 1 joint",
                     capsys.readouterr().err)
    assert set(children) == {"flat", "NN1", "NN2", "NN3", "NN4", "finetune"}
    assert {c.info.status for c in children.values()} == {"FINISHED"}
    assert children["NN3"].data.params["trunk.branch_at"] == "-1" and "val_accuracy" in children["NN3"].data.metrics
    tree = load_model(Path("runs") / "models" / "moravcik_branched")
    flat_macs = multiply_adds(create_model(n_outputs=7, **tree.spec_.root.model))  # the smoke run's width
    assert flat_macs < parent.data.metrics["size_multiply_adds"] < 2 * flat_macs  # one trunk, four last blocks
    assert parent.data.metrics["size_multiply_adds"] == multiply_adds(*tree.keras_models().values())


def test_a_branched_trees_equal_cost_control_is_its_flat_network_widened_to_its_cost():
    from cnntree.hierarchy.controls import control_spec, tree_multiply_adds
    from cnntree.spec import load_spec
    from cnntree.workflows.compare import ranking_table

    tree = load_spec(ROOT / "trees" / "moravcik_branched_default.json")
    control, facts = control_spec(tree)
    small = load_model("small").spec
    assert control.kind == "single" and control.init_source() is None
    assert control.root.train == small.root.train and control.root.augment == small.root.augment  # its recipe
    assert facts["tree_multiply_adds"] == tree_multiply_adds(tree) > multiply_adds(create_model(n_outputs=7,
                                                                                              **small.root.model))
    widths = {w: network_multiply_adds({**small.root.model, "width": w})
              for w in (facts["width"] - 0.05, facts["width"], facts["width"] + 0.05)}
    gap = {w: abs(c - facts["tree_multiply_adds"]) for w, c in widths.items()}
    assert min(gap, key=gap.get) == facts["width"] and control.root.model["width"] == facts["width"] > 1
    assert control.name == f"{small.name}_w{facts['width']:g}" and tree.name in control.description
    assert control_spec(load_spec(ROOT / "trees" / "moravcik_shared_default.json")) is None  # no layers of its own
    row = {"spec": control.name, "kind": "single", "accuracy_mean": 0.5, "accuracy_std": 0.0, "macro_f1_mean": 0.4,
           "macro_f1_std": 0.0, "hierarchical_f1_mean": None, "train_seconds_mean": 1, "images_seen_mean": 1,
           "parameters_mean": 1, "multiply_adds_mean": facts["multiply_adds"], "vs_reference": None, "control": facts}
    table = ranking_table({"reference": control.name, "rows": [row]})
    assert table.splitlines()[-1].startswith(f"{control.name}: the equal-cost control of moravcik_branched_default "
                                             f"(width {facts['width']:g}: ")


def test_show_and_the_hierarchy_picture_say_where_the_tree_branches(tmp_path):
    from cnntree.plots import draw_hierarchy
    from cnntree.spec import load_spec
    from cnntree.spec.text import training_notes

    tree = load_spec(ROOT / "trees" / "moravcik_branched_default.json")
    assert "each with its own copy of its last block" in training_notes(tree)
    assert "its own copy of block 2 and above" in training_notes(branched_spec(2))
    assert "its own copy of every layer after block3" in training_notes(branched_spec("block3"))
    assert "own copy" not in training_notes(load_spec(ROOT / "trees" / "moravcik_shared_default.json"))
    assert draw_hierarchy(tree, tmp_path / "tree.png").stat().st_size > 10_000
