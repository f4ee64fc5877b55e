"""The time a training announces before it starts: this machine's pace, remembered between
trainings, times the work of every network."""

import json

import pytest

from cnntree.nets import pace


def test_the_pace_is_remembered_per_model_family_and_replaces_the_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNTREE_CACHE", str(tmp_path))
    assert pace.measured().get("vgg") is None
    seconds, own = pace.estimate({"vgg": 1e12})
    assert not own and seconds == pytest.approx(1e12 * pace.REFERENCE_SECONDS_PER_WORK["vgg"])
    pace.record("vgg", epoch_seconds=10.0, faces=1000, multiply_adds=5_000_000)  # 2e-9 s per face-multiply-add
    assert pace.measured().get("vgg") == pytest.approx(2e-9)
    assert pace.estimate({"vgg": 1e9}) == (pytest.approx(2.0), True)
    # a tiny network's pace (its epoch mostly batches and augmentation) leaves the other families' alone
    pace.record("lenet", epoch_seconds=5.0, faces=1000, multiply_adds=50_000)  # 1e-7
    assert pace.measured().get("vgg") == pytest.approx(2e-9) and pace.measured().get("lenet") == pytest.approx(1e-7)
    seconds, own = pace.estimate({"vgg": 1e9, "mini_xception": 1e9})
    assert not own and seconds == pytest.approx(2.0 + 1e9 * pace.REFERENCE_SECONDS_PER_WORK["mini_xception"])
    slowest = max(pace.REFERENCE_SECONDS_PER_WORK.values())  # a family not measured on the reference machine
    assert pace.estimate({"mobilenet_v2": 1e9}) == (pytest.approx(1e9 * slowest), False)
    pace.pace_file().write_text(json.dumps({"seconds_per_work": 1e-10}))
    assert pace.measured().get("vgg") is None  # a record of one pace for every family is forgotten
    pace.pace_file().write_text("{damaged")
    assert pace.measured().get("vgg") is None  # a damaged record is forgotten, not an error
    pace.pace_file().write_text(json.dumps({"seconds_per_work": {"vgg": -1, "lenet": "fast", "mini_xception": 3e-10}}))
    assert pace.measured().get("vgg") is None and pace.measured().get("lenet") is None
    assert pace.measured().get("mini_xception") == pytest.approx(3e-10)


@pytest.mark.slow  # trains
def test_a_tiny_networks_training_leaves_a_real_networks_announced_time_alone(tmp_path, monkeypatch):
    """A tiny lenet trained first recorded a pace 36 times the reference VGG pace: the moravcik tree
    announced 12 hours for a training of 16 minutes."""
    from cnntree.data import load_for_spec
    from cnntree.nets.train import train_network
    from cnntree.spec import load_spec
    from cnntree.spec.sections import AUGMENT, TRAIN
    from cnntree.workflows.train import plan

    from .helpers import ROOT, TINY_MODEL

    monkeypatch.setenv("CNNTREE_CACHE", str(tmp_path))
    spec = load_spec(ROOT / "trees" / "moravcik.json")
    data, splits = load_for_spec(spec)
    before = plan(spec, data, splits)
    faces = data.images[splits.train][:64], data.labels[splits.train][:64] % 2
    train_network({"model": TINY_MODEL, "augment": AUGMENT.parse({}, "augment"),
                   "train": TRAIN.parse({"epochs": 2, "batch_size": 32}, "train")}, 2, faces, faces,
                  tmp_path / "net", printer=lambda line: None)
    assert set(json.loads(pace.pace_file().read_text())["seconds_per_work"]) == {"lenet"}
    assert plan(spec, data, splits) == before


def test_the_planned_work_counts_every_network_at_its_budget(monkeypatch, tmp_path):
    """Faces after balancing and the quick cap, times multiply-adds, times epochs, per network."""
    from cnntree.data import load_for_spec
    from cnntree.data.nodedata import node_dataset
    from cnntree.nets.cost import multiply_adds
    from cnntree.nets.models import create_model
    from cnntree.spec import parse_spec, with_overrides
    from cnntree.workflows.train import plan, training_work

    monkeypatch.setenv("CNNTREE_CACHE", str(tmp_path))
    spec = with_overrides(parse_spec({"name": "t", "kind": "tree",
                                      "defaults": {"model": {"name": "lenet", "filters": [4, 8], "dense": 8},
                                                   "train": {"epochs": 3}},
                                      "nodes": [{"id": "root", "children": ["happy", "rest"], "balance": "one_vs_rest"},
                                                {"id": "rest", "children": ["angry", "disgust", "fear", "sad",
                                                                            "surprise", "neutral"]}]}), quick=True)
    data, splits = load_for_spec(spec)
    root_faces = len(node_dataset(spec.nodes[0], data.labels, data.classes, splits.train).index)
    assert root_faces < 512  # happy against the rest, drawn down to happy's count: under the cap
    macs = [multiply_adds(create_model(n_outputs=n, name="lenet", filters=[4, 8], dense=8)) for n in (2, 6)]
    assert training_work(spec, data, splits) == {"lenet": pytest.approx((root_faces * macs[0] + 512 * macs[1]) * 1)}
    line = plan(spec, data, splits)
    assert line.startswith("plan: 2 network(s), 1 epochs each") and "at most, at a 2-core CPU's pace" in line


def test_a_networks_cost_is_counted_once_per_setting():
    from cnntree.nets.cost import _built_multiply_adds, multiply_adds, network_multiply_adds
    from cnntree.nets.models import create_model

    model = {"name": "lenet", "filters": [4, 8], "dense": 8}
    first = network_multiply_adds(model, 3, "symmetric")
    built = _built_multiply_adds.cache_info().misses
    assert first == multiply_adds(create_model(n_outputs=3, normalize="symmetric", **model))
    assert network_multiply_adds(dict(reversed(model.items())), 3, "symmetric") == first  # the same setting
    assert _built_multiply_adds.cache_info().misses == built  # not built again
    assert network_multiply_adds(model, 4, "symmetric") > first and _built_multiply_adds.cache_info().misses == built + 1
