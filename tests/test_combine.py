import numpy as np
import pytest

from cnntree.compose.routing import HardRouting, SoftRouting
from cnntree.compose.voting import HardVote, SoftVote, WeightedVote
from cnntree.evaluation.metrics import hierarchical_metrics, split_prefix
from cnntree.spec import load_spec

from .helpers import ROOT

# classes: angry, disgust, fear, happy, sad, surprise, neutral
OUTPUTS = {
    "NN1": np.array([[0.3, 0.7]]),          # fear | rest
    "NN2": np.array([[0.4, 0.6]]),          # {angry, sad, neutral} | {disgust, happy, surprise}
    "NN3": np.array([[0.5, 0.2, 0.3]]),     # angry | sad | neutral
    "NN4": np.array([[0.1, 0.3, 0.6]]),     # disgust | happy | surprise
}


@pytest.fixture(scope="module")
def moravcik():
    return load_spec(ROOT / "trees" / "moravcik.json")


def test_soft_routing_multiplies_the_path(moravcik):
    p = SoftRouting(moravcik).combine(OUTPUTS)[0]
    expected = {"angry": 0.7 * 0.4 * 0.5, "disgust": 0.7 * 0.6 * 0.1, "fear": 0.3, "happy": 0.7 * 0.6 * 0.3,
                "sad": 0.7 * 0.4 * 0.2, "surprise": 0.7 * 0.6 * 0.6, "neutral": 0.7 * 0.4 * 0.3}
    assert p.tolist() == pytest.approx([expected[c] for c in moravcik.classes])
    assert p.sum() == pytest.approx(1.0)
    assert moravcik.classes[p.argmax()] == "fear"


def test_hard_routing_follows_the_argmax(moravcik):
    p = HardRouting(moravcik).combine(OUTPUTS)[0]
    assert moravcik.classes[p.argmax()] == "surprise"  # rest (0.7) -> group 2 (0.6) -> surprise (0.6)
    assert p.tolist() == [0, 0, 0, 0, 0, 1, 0]


def test_votes():
    outputs = {"a": np.array([[0.6, 0.4], [0.1, 0.9]]), "b": np.array([[0.2, 0.8], [0.3, 0.7]]),
               "c": np.array([[0.45, 0.55], [0.8, 0.2]])}
    soft = SoftVote(["a", "b", "c"], {"a": 0.9, "b": 0.1, "c": 0.5}).combine(outputs)  # accuracies ignored
    assert soft[0].tolist() == pytest.approx([(0.6 + 0.2 + 0.45) / 3, (0.4 + 0.8 + 0.55) / 3])
    weighted = WeightedVote(["a", "b", "c"], {"a": 0.5, "b": 0.25, "c": 0.25}).combine(outputs)
    assert weighted[0].tolist() == pytest.approx([0.5 * 0.6 + 0.25 * 0.2 + 0.25 * 0.45,
                                                  0.5 * 0.4 + 0.25 * 0.8 + 0.25 * 0.55])
    hard = HardVote(["a", "b", "c"], {"a": 100.0}).combine(outputs)  # weights ignored: one member, one vote
    assert hard.ravel().tolist() == pytest.approx([1 / 3, 2 / 3, 1 / 3, 2 / 3])


def test_hierarchical_metrics_by_hand(moravcik):
    c = {name: i for i, name in enumerate(moravcik.classes)}
    # true sad, predicted neutral: paths {NN2, NN3, sad} and {NN2, NN3, neutral} share 2 of 3
    # true fear, predicted fear: {fear}, 1 of 1
    m = hierarchical_metrics(moravcik, [c["sad"], c["fear"]], [c["neutral"], c["fear"]])
    assert m["hierarchical_precision"] == pytest.approx(3 / 4)
    assert m["hierarchical_recall"] == pytest.approx(3 / 4)
    # true happy, predicted fear: nothing shared
    assert hierarchical_metrics(moravcik, [c["happy"]], [c["fear"]])["hierarchical_f1"] == 0.0


def test_split_prefixes():
    assert (split_prefix("PublicTest"), split_prefix("PrivateTest"), split_prefix("Test")) == \
        ("public", "private", "test")
