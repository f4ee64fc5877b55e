"""Trees that start from their flat network: warm starts (trunk copied, heads from class means),
joint fine-tuning of the composed tree (path product), and the errors when they cannot apply."""

import json

import keras
import numpy as np
import pytest

from cnntree import CnnTreeClassifier, load_model, save_model
from cnntree.compose.routing import SoftRouting
from cnntree.errors import CnnTreeError
from cnntree.spec import parse_spec
from cnntree.training.trunk import trunk_networks

from .helpers import TINY_MODEL, train_grown_tree, training_rows

TREE = [{"id": "root", "children": ["happy", "rest"]},
        {"id": "rest", "children": ["angry", "disgust", "fear", "sad", "surprise", "neutral"], "balance": "none"}]


def tree_spec(**extra):
    return parse_spec({"name": "warm", "kind": "tree", "nodes": TREE,
                       "defaults": {"model": TINY_MODEL, "train": {"epochs": 1, "batch_size": 64, "seed": 4}},
                       **extra}, base_dir=".")


def saved_flat(folder, model=None):
    """An untrained single network saved as a model folder (what init.from may name)."""
    from cnntree.nets.models import create_model

    spec = parse_spec({"name": "flat", "kind": "single", "defaults": {"model": model or TINY_MODEL}})
    net = create_model(n_outputs=7, **(model or TINY_MODEL))
    return save_model(CnnTreeClassifier.from_networks(spec, {"net": net}), folder), net


def fit(spec, sample, work):
    train, val = training_rows(sample), sample.splits == "PublicTest"
    return CnnTreeClassifier(spec, work_dir=work).fit(
        sample.images[train], sample.labels[train], (sample.images[val], sample.labels[val]))


def test_warm_start_copies_the_trunk_and_starts_each_head_at_its_classes_mean():
    from cnntree.nets.models import create_model
    from cnntree.nets.warmstart import warm_start, weighted_layers

    flat, node = create_model(n_outputs=7, **TINY_MODEL), create_model(n_outputs=2, **TINY_MODEL)
    warm_start(node, flat, [[3], [0, 1, 2, 4, 5, 6]])
    mine, theirs = weighted_layers(node), weighted_layers(flat)
    for a, b in zip(mine[:-1], theirs[:-1]):
        for x, y in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(x, y)
    kernel, bias = mine[-1].get_weights()
    flat_kernel, flat_bias = theirs[-1].get_weights()
    np.testing.assert_allclose(kernel[:, 0], flat_kernel[:, 3])
    np.testing.assert_allclose(kernel[:, 1], flat_kernel[:, [0, 1, 2, 4, 5, 6]].mean(axis=1), rtol=1e-6)
    # a group's bias gains log(its size): its logit is its classes' log-sum-exp when they score alike
    np.testing.assert_allclose(bias, [flat_bias[3], flat_bias[[0, 1, 2, 4, 5, 6]].mean() + np.log(6)], rtol=1e-6,
                               atol=1e-7)


@pytest.mark.slow  # trains
def test_warm_started_nodes_begin_at_the_flat_trunk_and_move_away_from_it(tmp_path, sample):
    from cnntree.nets.warmstart import weighted_layers

    folder, flat = saved_flat(tmp_path / "flat")
    clf = fit(tree_spec(init={"from": str(folder)}), sample, tmp_path / "work")
    first_conv = weighted_layers(flat)[0].get_weights()[0]
    for node in clf.spec_.nodes:
        trained = weighted_layers(clf.networks_[node.id].model)[0].get_weights()[0]
        assert not np.allclose(trained, first_conv)  # trained after the start
        assert np.abs(trained - first_conv).max() < 0.1  # one epoch at lr 1e-3 moves it a little, not from scratch
    start = keras.saving.load_model(tmp_path / "work" / "flat" / "network.keras")
    np.testing.assert_array_equal(weighted_layers(start)[0].get_weights()[0], first_conv)


def test_a_mismatched_or_wrong_init_from_is_a_one_line_error(tmp_path, sample, tiny_model):
    folder, _ = saved_flat(tmp_path / "xception", {"name": "mini_xception", "width": 0.25})
    with pytest.raises(CnnTreeError, match=r"init.from .*xception: network root \(lenet\) cannot start from it"):
        fit(tree_spec(init={"from": str(folder)}), sample, tmp_path / "w1")
    with pytest.raises(CnnTreeError, match=r'a flat classifier \(kind "single"\) is needed, this one is a tree'):
        fit(tree_spec(init={"from": str(tiny_model)}), sample, tmp_path / "w2")
    (tmp_path / "tree.json").write_text(json.dumps({"name": "t", "kind": "tree", "nodes": TREE}))
    with pytest.raises(CnnTreeError, match=r'must be of kind "single", this one is "tree"'):
        fit(tree_spec(init={"from": str(tmp_path / "tree.json")}), sample, tmp_path / "w3")
    with pytest.raises(CnnTreeError, match=r"finetune: joint fine-tuning composes a tree's nodes"):
        parse_spec({"name": "v", "kind": "single", "finetune": {"epochs": 1}})


@pytest.mark.slow  # trains
def test_a_jointly_finetuned_tree_is_the_path_product_of_its_retrained_nodes(tmp_path, sample):
    from cnntree.nets.train import as_input
    from cnntree.training.finetune import JointTree

    joint = fit(tree_spec(finetune={"epochs": 2, "lr": 0.001}), sample, tmp_path / "joint")
    faces = sample.images[sample.splits == "PrivateTest"]
    after = joint.network_outputs(faces)
    for node in joint.spec_.nodes:  # each node's own training, checkpointed before the joint epochs
        trained = keras.saving.load_model(tmp_path / "joint" / "nodes" / node.id / "last.keras")
        before = np.asarray(trained.predict_on_batch(as_input(faces)))
        assert np.abs(before - after[node.id]).max() > 1e-3, node.id  # fine-tuning changed every node
    proba = joint.predict_proba(faces)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(proba, SoftRouting(joint.spec_).combine(after), rtol=1e-6)
    model = JointTree(joint.spec_, [joint.networks_[n.id].model for n in joint.spec_.nodes])
    np.testing.assert_allclose(np.asarray(model(as_input(faces))[0]), proba, rtol=1e-4, atol=1e-6)  # what it trained
    assert joint.priors_ == {} and joint.finetune_["epochs"] == 2  # the natural mix: nothing to undo
    assert len(joint.finetune_["history"]["val_path_nll"]) == 2
    assert joint.finetune_["images_seen"] == 2 * len(training_rows(sample))  # every training face, twice
    assert joint.images_seen_ > joint.finetune_["images_seen"]  # and the nodes' own epochs
    again = load_model(save_model(joint, tmp_path / "model"))
    np.testing.assert_allclose(again.predict_proba(faces), proba, rtol=1e-5)


@pytest.mark.slow
def test_a_warm_spec_trains_its_flat_network_first_and_logs_every_stage(tmp_path):
    """moravcik_warm's recipe (a flat spec trained first, warm nodes, joint fine-tuning) with tiny
    networks: one FINISHED parent whose children are the flat network, the nodes and the fine-tuning."""
    runs = train_grown_tree(tmp_path, "moravcik_warm.json", TINY_MODEL)
    parent, children = runs.pop("parent"), runs
    assert parent.info.status == "FINISHED"
    assert set(children) == {"flat", "NN1", "NN2", "NN3", "NN4", "finetune"}
    assert {c.info.status for c in children.values()} == {"FINISHED"}
    assert "val_path_nll" in children["finetune"].data.metrics
    assert parent.data.metrics["private_accuracy"] == parent.data.metrics["private_accuracy_soft"]
    assert parent.data.metrics["size_parameters"] > 0 and parent.data.metrics["size_multiply_adds"] > 0


@pytest.mark.slow  # trains
def test_a_shared_trunk_tree_is_one_backbone_with_heads_trained_jointly(tmp_path, sample):
    from cnntree.nets.cost import parameters
    from cnntree.nets.models import create_model

    spec = tree_spec(trunk={"shared": True}, finetune={"epochs": 1, "lr": 0.001})
    clf = fit(spec, sample, tmp_path / "work")
    models = list(clf.keras_models().values())
    single = parameters(create_model(n_outputs=7, **TINY_MODEL))
    head = TINY_MODEL["dense"] + 1  # one more output unit: dense inputs + bias
    # one backbone (the flat network's minus its 7-way head) plus a 2-way and a 6-way head
    assert parameters(*models) == single - 7 * head + 2 * head + 6 * head
    assert sum(map(parameters, models)) > 1.8 * parameters(*models)  # what separate networks would hold
    trunk = [layer for layer in models[0].layers if layer.weights][:-1]
    assert all(layer in models[1].layers for layer in trunk)
    faces = sample.images[sample.splits == "PrivateTest"]
    proba = clf.predict_proba(faces)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    again = load_model(save_model(clf, tmp_path / "model"))
    np.testing.assert_allclose(again.predict_proba(faces), proba, rtol=1e-5)
    with pytest.raises(CnnTreeError, match=r"give finetune.epochs"):
        tree_spec(trunk={"shared": True})
    with pytest.raises(CnnTreeError, match=r"nodes\[1\].model: differs from root's"):
        parse_spec({"name": "s", "kind": "tree", "trunk": {"shared": True}, "finetune": {"epochs": 1},
                    "defaults": {"model": TINY_MODEL},
                    "nodes": [TREE[0], {**TREE[1], "model": {"dense": 4}}]})


@pytest.mark.slow  # trains
def test_a_flat_head_on_the_shared_trunk_starts_as_the_flat_network_and_its_loss_trains_the_trunk(tmp_path, sample):
    from cnntree.nets.train import as_input
    from cnntree.nets.warmstart import weighted_layers
    from cnntree.training.flatstart import FlatStart

    folder, flat = saved_flat(tmp_path / "flat")
    flat.save(tmp_path / "flat.keras")
    faces = sample.images[sample.splits == "PrivateTest"]
    spec = tree_spec(trunk={"shared": True}, init={"from": str(folder)},
                     finetune={"epochs": 1, "lr": 0.01, "loss": {"path": 0, "nodes": 0, "flat": 1}})
    networks, head = trunk_networks(spec, FlatStart(tmp_path / "flat.keras", spec.classes), print)
    np.testing.assert_allclose(np.asarray(head(as_input(faces))), np.asarray(flat(as_input(faces))), rtol=1e-5,
                               atol=1e-6)  # the flat head begins as the flat network itself
    assert weighted_layers(head)[:-1] == weighted_layers(networks["root"].model)[:-1]  # on the one trunk

    trained = fit(spec, sample, tmp_path / "work")
    assert len(trained.finetune_["history"]["val_flat_accuracy"]) == 1
    models = trained.keras_models()
    start = {n: weighted_layers(m.model) for n, m in networks.items()}
    for node_id, model in models.items():
        layers = weighted_layers(model)
        assert not np.allclose(layers[0].get_weights()[0], start[node_id][0].get_weights()[0])  # the trunk trained
        np.testing.assert_array_equal(layers[-1].get_weights()[0], start[node_id][-1].get_weights()[0])  # weight 0
    with pytest.raises(CnnTreeError, match=r"finetune.loss.flat: the flat head sits on a shared trunk"):
        tree_spec(finetune={"epochs": 1, "loss": {"flat": 1}})


@pytest.mark.slow  # trains
def test_a_single_network_can_continue_from_a_flat_network(tmp_path, sample):
    from cnntree.nets.train import as_input

    folder, flat = saved_flat(tmp_path / "flat")
    spec = parse_spec({"name": "more", "kind": "single", "init": {"from": str(folder)},
                       "defaults": {"model": TINY_MODEL, "balance": {"strategy": "none"}, "train": {"epochs": 1, "seed": 1,
                                                                   "optimizer": {"name": "adam", "lr": 1e-9}}}})
    clf = fit(spec, sample, tmp_path / "work")
    faces = sample.images[sample.splits == "PrivateTest"]
    # at a vanishing rate one epoch leaves it where it started: the flat network, head and all
    np.testing.assert_allclose(clf.predict_proba(faces), np.asarray(flat(as_input(faces))), rtol=1e-3, atol=1e-5)


@pytest.mark.slow  # trains
def test_a_frozen_trunk_trains_only_the_head_for_its_epochs_and_then_the_whole_network(tmp_path, sample):
    from cnntree.nets.warmstart import weighted_layers

    folder, flat = saved_flat(tmp_path / "flat")
    start = [layer.get_weights() for layer in weighted_layers(flat)]

    def trained(epochs):
        spec = tree_spec(init={"from": str(folder)})
        raw = {**spec.raw, "defaults": {**spec.raw["defaults"], "train": {
            **spec.raw["defaults"]["train"], "epochs": 1, "freeze_trunk_epochs": 1, "restore_best": False}}}
        spec = parse_spec(raw, overrides={"epochs": epochs})
        return {n: weighted_layers(m) for n, m in fit(spec, sample, tmp_path / "work").keras_models().items()}

    for layers in trained(1).values():  # epoch 1: the head alone
        for layer, flat_weights in zip(layers[:-1], start[:-1]):
            for mine, theirs in zip(layer.get_weights(), flat_weights):
                np.testing.assert_array_equal(mine, theirs)
        assert layers[-1].get_weights()[0].shape[-1] < 7  # the node's own head, trained from the class means
    for layers in trained(2).values():  # resumed to 2 epochs: the trunk trains in the second
        assert layers[0].trainable and not np.allclose(layers[0].get_weights()[0], start[0][0])
    with pytest.raises(CnnTreeError, match=r"nodes\[0\].train.freeze_trunk_epochs: freezes a warm-started trunk; "
                                           r"give init.from"):
        tree_spec(nodes=[{**TREE[0], "train": {"freeze_trunk_epochs": 1}}, TREE[1]])


@pytest.mark.slow  # trains
def test_class_read_heads_start_as_the_flat_network_exactly(tmp_path, sample):
    from cnntree.nets.train import as_input
    from cnntree.training.flatstart import FlatStart

    folder, flat = saved_flat(tmp_path / "flat")
    flat.save(tmp_path / "flat.keras")
    faces = sample.images[sample.splits == "PrivateTest"]
    tree = [{"id": "root", "children": ["happy", "rest"]},
            {"id": "rest", "children": [["angry", "disgust"], "fear", ["sad", "surprise", "neutral"]]}]
    spec = tree_spec(nodes=tree, trunk={"shared": True, "heads": "classes"}, init={"from": str(folder)},
                     finetune={"epochs": 1, "lr": 0.001})
    networks, _ = trunk_networks(spec, FlatStart(tmp_path / "flat.keras", spec.classes), print)
    path = SoftRouting(spec).combine({n: np.asarray(m(as_input(faces)), np.float64) for n, m in networks.items()})
    np.testing.assert_allclose(path, np.asarray(flat(as_input(faces))), rtol=1e-4, atol=1e-6)  # before training
    assert networks["rest"].model.output_shape[-1] == 3
    assert networks["rest"].model.layers[-2].groups == [[0, 1], [2], [3, 4, 5]]

    trained = fit(spec, sample, tmp_path / "work")
    proba = trained.predict_proba(faces)
    assert not np.allclose(proba, path, atol=1e-3)  # joint training moved it
    again = load_model(save_model(trained, tmp_path / "model"))  # the log-sum-exp layer loads in safe mode
    np.testing.assert_allclose(again.predict_proba(faces), proba, rtol=1e-5)
    with pytest.raises(CnnTreeError, match=r"trunk.heads: shapes the heads of a shared trunk"):
        tree_spec(trunk={"heads": "classes"})
