import numpy as np
import pytest

from cnntree.data import load_for_spec
from cnntree.data.balance import BALANCERS, ClassWeight, NoBalance, OneVsRest, Oversample, make_balancer
from cnntree.data.nodedata import node_dataset
from cnntree.errors import CnnTreeError
from cnntree.spec import SECTIONS, load_spec, parse_spec

from .helpers import ROOT

GROUPS = np.repeat([0, 1, 2], [10, 50, 100])


def test_oversample_every_group_to_ratio_of_largest():
    picked = Oversample(0.8).resample(GROUPS, np.random.default_rng(0))
    assert np.bincount(GROUPS[picked.index]).tolist() == [80, 80, 80]
    # the largest group is drawn without replacement, small ones repeat every member before any repeat
    big = picked.index[GROUPS[picked.index] == 2]
    small = picked.index[GROUPS[picked.index] == 0]
    assert len(set(big)) == 80 and set(small) == set(range(10))
    assert picked.class_weight is None


def test_one_vs_rest_takes_all_of_the_smallest_group():
    picked = OneVsRest().resample(GROUPS, np.random.default_rng(0))
    assert np.bincount(GROUPS[picked.index]).tolist() == [10, 10, 10]
    assert sorted(picked.index[GROUPS[picked.index] == 0].tolist()) == list(range(10))
    assert len(set(picked.index)) == 30  # no repeats


def test_class_weight_keeps_samples_and_weights_them():
    picked = ClassWeight().resample(GROUPS, np.random.default_rng(0))
    assert sorted(picked.index.tolist()) == list(range(160))
    assert picked.class_weight == pytest.approx({0: 160 / 30, 1: 160 / 150, 2: 160 / 300})


def test_none_keeps_everything_once():
    assert sorted(NoBalance().resample(GROUPS, np.random.default_rng(0)).index.tolist()) == list(range(160))


def test_resampling_is_deterministic_for_a_seed():
    a = Oversample().resample(GROUPS, np.random.default_rng(7)).index
    b = Oversample().resample(GROUPS, np.random.default_rng(7)).index
    c = Oversample().resample(GROUPS, np.random.default_rng(8)).index
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_every_spec_strategy_has_a_class():
    assert set(SECTIONS["balance"].variants) == set(BALANCERS)
    assert isinstance(make_balancer({"strategy": "oversample", "ratio": 0.5}), Oversample)
    assert make_balancer({"strategy": "oversample", "ratio": 0.5}).ratio == 0.5


def test_moravcik_node_sets_on_the_sample():
    spec = load_spec(ROOT / "trees" / "moravcik.json")
    data, splits = load_for_spec(spec)
    sets = {n.id: node_dataset(n, data.labels, data.classes, splits.train) for n in spec.nodes}
    # 162 training faces per class (180 minus the 10% validation carve-out)
    assert sets["NN1"].before == (162, 972) and sets["NN1"].after == (162, 162)
    assert sets["NN2"].before == (486, 486) and sets["NN2"].after == (389, 389)
    assert sets["NN3"].before == (162, 162, 162) and sets["NN3"].after == (130, 130, 130)
    assert sets["NN4"].after == (130, 130, 130)
    # relabelled to the child group: NN2's group 0 holds only angry, sad and neutral faces
    nn2 = sets["NN2"]
    names = {data.classes[c] for c in data.labels[nn2.index[nn2.targets == 0]]}
    assert names == {"angry", "sad", "neutral"}
    assert "fear" not in {data.classes[c] for c in data.labels[nn2.index]}


def test_evaluation_sets_are_not_balanced(sample):
    spec = load_spec(ROOT / "trees" / "moravcik.json")
    test = np.flatnonzero(sample.splits == "PrivateTest")
    nn1 = node_dataset(spec.node("NN1"), sample.labels, sample.classes, test, balance=False)
    assert nn1.before == nn1.after == (35, 210)


def test_node_without_samples_is_an_error(sample):
    spec = parse_spec({"name": "s", "kind": "single"})
    only_angry = np.flatnonzero(sample.labels == 0)
    with pytest.raises(CnnTreeError, match="node net: no samples of disgust"):
        node_dataset(spec.nodes[0], sample.labels, sample.classes, only_angry)
