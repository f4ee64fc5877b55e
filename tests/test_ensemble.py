"""cnntree ensemble: trained single networks become one voting classifier, nothing retrained."""

import json

import keras
import numpy as np
import pytest

from cnntree import CnnTreeClassifier, load_model, save_model
from cnntree.cli import main
from cnntree.errors import CnnTreeError
from cnntree.estimator.ensemble import ensemble, member_ids
from cnntree.nets.models import create_model
from cnntree.pretrained import HERE
from cnntree.spec import parse_spec

from .helpers import TINY_MODEL


def _single(seed: int, val_accuracy: float, test_time: str = "none") -> CnnTreeClassifier:
    """A single network with its own random weights (no training needed to tell members apart)."""
    spec = parse_spec({"name": f"net{seed}", "kind": "single", "defaults": {"model": TINY_MODEL,
                                                                            "augment": {"test_time": test_time}}})
    keras.utils.set_random_seed(seed)
    net = create_model("lenet", **{k: v for k, v in TINY_MODEL.items() if k != "name"})
    return CnnTreeClassifier.from_networks(spec, {"net": net}, {"net": val_accuracy})


def test_a_soft_ensemble_is_the_mean_of_its_members_and_weighted_follows_validation(sample):
    faces = sample.images[:20]
    a, b = _single(1, 0.6), _single(2, 0.2, test_time="flip")
    pa, pb = a.predict_proba(faces), b.predict_proba(faces)
    assert np.abs(pa - pb).max() > 1e-3  # the members differ, so the mean is a real test
    soft = ensemble({"a": a, "b": b})
    np.testing.assert_allclose(soft.predict_proba(faces), (pa + pb) / 2, atol=1e-5)  # b keeps its flip views
    weighted = ensemble({"a": a, "b": b}, "weighted")
    np.testing.assert_allclose(weighted.predict_proba(faces), 0.75 * pa + 0.25 * pb, atol=1e-5)
    assert weighted.spec_.kind == "voting" and [n.id for n in weighted.spec_.nodes] == ["a", "b"]


def test_an_ensemble_saves_loads_and_runs_from_the_command_line(tmp_path, capsys, sample):
    faces = sample.images[:12]
    folders = [save_model(_single(seed, 0.5), tmp_path / name) for seed, name in ((3, "snap20"), (4, "snap20-b"))]
    assert main(["ensemble", *map(str, folders), "--out", str(tmp_path / "both")]) == 0
    assert "soft vote of snap20, snap20_b" in capsys.readouterr().out
    loaded = load_model(tmp_path / "both")
    expected = np.mean([load_model(f).predict_proba(faces) for f in folders], axis=0)
    np.testing.assert_allclose(loaded.predict_proba(faces), expected, atol=1e-5)
    assert json.loads((tmp_path / "both" / "spec.json").read_text())["voting"] == "soft"


def test_ensemble_refuses_what_it_cannot_combine(tiny_model, tmp_path, capsys):
    single = _single(5, 0.5)
    with pytest.raises(CnnTreeError, match="at least 2 models"):
        ensemble({"a": single})
    with pytest.raises(CnnTreeError, match="tree classifier; an ensemble's members are single networks"):
        ensemble({"a": single, "tree": load_model(tiny_model)})
    six = parse_spec({"name": "six", "kind": "single", "classes": ["angry", "fear", "happy", "sad", "surprise",
                                                                     "neutral"], "defaults": {"model": TINY_MODEL}})
    other = CnnTreeClassifier.from_networks(six, {"net": create_model("lenet", n_outputs=6, filters=[4, 8], dense=8)})
    with pytest.raises(CnnTreeError, match="other: classes .* differ from the other members'"):
        ensemble({"a": single, "other": other})
    folder = save_model(single, tmp_path / "one")
    assert main(["ensemble", str(folder), str(tiny_model), "--out", str(tmp_path / "e")]) == 2
    assert "a tree classifier" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()  # nothing written
    other = save_model(_single(6, 0.5), tmp_path / "two")
    before = sorted(p.name for p in other.rglob("*"))
    assert main(["ensemble", str(folder), str(other), "--out", str(other)]) == 2  # would replace a member
    assert "that this command reads; give a new folder" in capsys.readouterr().err
    assert sorted(p.name for p in other.rglob("*")) == before
    assert main(["ensemble", str(folder), str(other), "--out", str(HERE / "default")]) == 2
    assert "a shipped model is read-only" in capsys.readouterr().err


def test_member_ids_are_safe_and_unique():
    assert member_ids(["default", "/x/runs/default", "a b", "9lives/", "..", "x" * 80]) == [
        "default", "default_2", "a_b", "m_9lives", "member", "x" * 48]
