import copy
import json

import pytest

from cnntree.errors import CnnTreeError
from cnntree.spec import FER2013_CLASSES, load_spec, parse_spec, summarize

from .helpers import ROOT

BASE = {
    "name": "t",
    "nodes": [
        {"id": "NN1", "children": ["fear", "NN2"]},
        {"id": "NN2", "children": ["NN3", "NN4"]},
        {"id": "NN3", "children": ["angry", "sad", "neutral"]},
        {"id": "NN4", "children": ["disgust", "happy", "surprise"]},
    ],
}


def spec_with(**changes):
    raw = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        target = raw
        keys = dotted.split("__")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target.setdefault(key, {})
        last = keys[-1]
        if last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value
    return raw


MALFORMED = [
    # (raw spec, expected message after "x.json: ")
    (spec_with(nodes__0__children=["feer", "NN2"]),
     'nodes[0].children[0]: unknown class or node "feer" (did you mean "fear"?)'),
    (spec_with(nodes__2__children=["angry", "sad", "neutrl"]),
     'nodes[2].children[2]: unknown class or node "neutrl" (did you mean "neutral"?)'),
    (spec_with(nodes__0__childs=["fear", "NN2"]), 'nodes[0].childs: unknown key "childs" (did you mean "children"?)'),
    (spec_with(nmae="x"), 'nmae: unknown key "nmae" (did you mean "name"?)'),
    (spec_with(kind="forest"), 'kind: unknown value "forest"; expected one of tree, single, voting'),
    (spec_with(defaults={"model": {"name": "vgg", "blocks": 0}}), "defaults.model.blocks: 0 is out of range (>= 1)"),
    (spec_with(defaults={"model": {"name": "resnet"}}),
     'defaults.model.name: unknown value "resnet" (did you mean "lenet"?); expected one of lenet, vgg, mini_xception, mobilenet_v2, vggnet'),
    (spec_with(defaults={"model": {"name": "vgg", "blockz": 3}}),
     'defaults.model.blockz: unknown key "blockz" (did you mean "blocks"?)'),
    (spec_with(defaults={"train": {"epochs": -3}}), "defaults.train.epochs: -3 is out of range (>= 1)"),
    (spec_with(defaults={"train": {"epochs": 2.5}}), "defaults.train.epochs: expected an integer, got 2.5"),
    (spec_with(defaults={"train": {"batch_size": "64"}}), "defaults.train.batch_size: expected an integer, got a string"),
    (spec_with(defaults={"train": {"optimizer": {"name": "adam", "lr": 0}}}),
     "defaults.train.optimizer.lr: 0 is out of range (> 0)"),
    (spec_with(defaults={"train": {"schedule": "cosinus"}}),
     'defaults.train.schedule.name: unknown value "cosinus" (did you mean "cosine"?); expected one of constant, '
     "exponential, plateau, cosine, cosine_restarts, one_cycle, step"),
    (spec_with(defaults={"augment": {"rotation": 400}}), "defaults.augment.rotation: 400 is out of range (<= 180)"),
    (spec_with(defaults={"augment": {"h_flip": "yes"}}), "defaults.augment.h_flip: expected true or false, got a string"),
    (spec_with(defaults={"balance": {"strategy": "oversample", "ratio": -1}}),
     "defaults.balance.ratio: -1 is out of range (> 0)"),
    (spec_with(nodes__3__balance={"strategy": "undersample"}),
     'nodes[3].balance.strategy: unknown value "undersample" (did you mean "oversample"?); expected one of oversample, one_vs_rest, '
     "class_weight, none"),
    (spec_with(nodes__1__model={"blocks": 9}), "nodes[1].model.blocks: 9 is out of range (<= 6)"),
    (spec_with(nodes__3__id="NN3"), 'nodes[3].id: "NN3" is already the id of nodes[2]'),
    (spec_with(nodes__3__children=["disgust", "happy", "sad"]),
     'nodes[3].children[2]: class "sad" already appears at nodes[2].children[1]'),
    (spec_with(nodes__3__children=["disgust", "happy"]),
     "nodes: class 'surprise' not placed in the tree (every class must be a leaf once)"),
    (spec_with(nodes__2__children=["angry", "sad", "neutral", "NN1"]), "nodes: the hierarchy has a cycle: "
     "NN1 -> NN2 -> NN3 -> NN1"),
    (spec_with(nodes__1__children=["NN3"]), "nodes[1].children: expected at least 2 item(s), got 1"),
    (spec_with(nodes__0__id="fear"), 'nodes[0].id: "fear" is a class name; node ids and class names must differ'),
    (spec_with(nodes__3__children=["disgust", "happy", 7]),
     "nodes[3].children[2]: expected a class name, a node id or a list of class names, got a number 7"),
    (spec_with(classes=["angry", "angry"]), 'classes[1]: "angry" appears twice'),
    (spec_with(kind="single"), 'nodes: is only used when kind is "tree" (this spec\'s kind is "single")'),
    ({"name": "t", "kind": "voting", "members": [{"id": "a"}]},
     "members: a voting ensemble needs at least 2 members, got 1"),
    ({"name": "t", "kind": "voting", "members": [{"id": "a"}, {"id": "a"}]},
     'members[1].id: "a" is already the id of members[0]'),
    ({"name": "t", "kind": "voting", "voting": "majority", "members": [{"id": "a"}, {"id": "b"}]},
     'voting: unknown value "majority"; expected one of hard, soft, weighted'),
    ({"kind": "single"}, "name: is required"),
    ([1, 2], "a spec is a JSON object at the top level"),
    (spec_with(data={"split": {"scheme": "kfold", "folds": 1}}), "data.split.folds: 1 is out of range (>= 2)"),
    (spec_with(data={"validation": {"fraction": 0}}), "data.validation.fraction: 0 is out of range (> 0)"),
    (spec_with(data={"drop": ["fear"]}), 'data.drop: "fear" is dropped but listed in classes'),
    (spec_with(nodes=[{"id": "A", "children": ["fear", "angry", "disgust", "happy"]},
                      {"id": "B", "children": ["sad", "surprise", "neutral"]}]),
     "nodes: a tree has exactly one root, found 2: A, B (make the others children of a node)"),
    (spec_with(defaults={"train": {"epochs": float("nan")}}), "NaN is not a JSON number"),
]


@pytest.mark.parametrize("raw,message", MALFORMED, ids=[m[:50] for _, m in MALFORMED])
def test_malformed_spec_names_file_and_path(tmp_path, raw, message):
    path = tmp_path / "x.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(CnnTreeError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: {message}"
    assert "\n" not in str(info.value)


def test_at_least_twenty_malformed_cases():
    assert len(MALFORMED) >= 20


@pytest.mark.parametrize("text,message", [
    ('{"name": "t",}', "invalid JSON: Expecting property name enclosed in double quotes (line 1, column 14)"),
    ('{"name": "t", "name": "u"}', 'duplicate key "name" in one JSON object'),
    ("", "invalid JSON: Expecting value (line 1, column 1)"),
])
def test_unreadable_json(tmp_path, text, message):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(CnnTreeError, match="^" + str(path).replace(".", r"\.") + ": ") as info:
        load_spec(path)
    assert str(info.value).endswith(message)


def test_missing_spec_file(tmp_path):
    with pytest.raises(CnnTreeError, match="no such spec file"):
        load_spec(tmp_path / "nope.json")


def test_moravcik_tree_structure():
    spec = load_spec(ROOT / "trees" / "moravcik.json")
    assert spec.kind == "tree" and spec.classes == FER2013_CLASSES
    assert [n.id for n in spec.nodes] == ["NN1", "NN2", "NN3", "NN4"]
    nn1, nn2, nn3, nn4 = spec.nodes
    assert nn1.groups == (("fear",), ("angry", "disgust", "happy", "sad", "surprise", "neutral"))
    assert nn2.groups == (("angry", "sad", "neutral"), ("disgust", "happy", "surprise"))
    assert nn3.groups == (("angry",), ("sad",), ("neutral",))
    assert [n.model["blocks"] for n in spec.nodes] == [3, 2, 3, 2]
    assert nn1.balance == {"strategy": "one_vs_rest", "calibrate": "prior"}
    assert nn2.balance == {"strategy": "oversample", "ratio": 0.8, "calibrate": "prior"}
    assert (nn3.augment["rotation"], nn3.augment["width_shift"], nn3.augment["h_flip"]) == (40, 0.4, True)
    assert nn1.augment["h_flip"] is False and nn1.augment["zoom"] == 0.15
    # the graph: one root, classes are exactly the leaves
    graph = spec.graph
    assert graph.graph["root"] == "NN1"
    assert sorted(n for n in graph if graph.out_degree(n) == 0) == sorted(FER2013_CLASSES)
    assert all(graph.in_degree(n) == 1 for n in graph if n != "NN1")


def test_defaults_are_inherited_and_overridden():
    raw = spec_with(defaults={"model": {"name": "vgg", "blocks": 2, "dropout": 0.4},
                              "train": {"epochs": 7, "optimizer": {"name": "sgd", "lr": 0.05}}},
                    nodes__2__model={"blocks": 3}, nodes__2__train={"optimizer": {"momentum": 0.5}})
    spec = parse_spec(raw)
    nn3 = spec.node("NN3")
    assert nn3.model["blocks"] == 3 and nn3.model["dropout"] == 0.4  # override + inherited
    assert nn3.train["optimizer"] == {"name": "sgd", "lr": 0.05, "momentum": 0.5, "nesterov": False,
                                      "weight_decay": 0.0}
    assert nn3.train["epochs"] == 7
    assert spec.node("NN4").model["blocks"] == 2


def test_switching_model_drops_the_inherited_parameters():
    raw = spec_with(defaults={"model": {"name": "vgg", "blocks": 2}}, nodes__0__model={"name": "mini_xception"})
    spec = parse_spec(raw)
    assert spec.node("NN1").model == {"name": "mini_xception", "width": 1.0, "l2": 0.01}


def test_list_group_becomes_a_flat_sub_node():
    raw = spec_with(nodes=[{"id": "R", "children": ["fear", ["angry", "disgust", "happy", "sad", "surprise", "neutral"]],
                            "model": {"blocks": 2}}])
    spec = parse_spec(raw)
    assert [n.id for n in spec.nodes] == ["R", "R.1"]
    sub = spec.node("R.1")
    assert sub.groups == tuple((c,) for c in ("angry", "disgust", "happy", "sad", "surprise", "neutral"))
    assert sub.model["blocks"] == 2  # the parent's overrides apply to the node made for its list


def test_single_and_voting_are_networks_over_all_classes():
    single = load_spec(ROOT / "trees" / "single_vgg.json")
    assert [n.id for n in single.nodes] == ["net"] and single.nodes[0].groups == tuple((c,) for c in FER2013_CLASSES)
    voting = load_spec(ROOT / "trees" / "voting.json")
    assert len(voting.nodes) >= 3 and voting.voting == "weighted"
    assert {n.model["name"] for n in voting.nodes} == {"vgg", "mini_xception", "lenet"}


def test_six_class_tree_drops_disgust():
    spec = load_spec(ROOT / "trees" / "moravcik_no_disgust.json")
    assert "disgust" not in spec.classes and len(spec.classes) == 6 and spec.data["drop"] == ["disgust"]


def test_unknown_node_lookup_has_hint():
    spec = parse_spec(BASE)
    with pytest.raises(CnnTreeError, match='no node "NN5" .*did you mean "NN'):
        spec.node("NN5")


def test_summaries_show_only_changes():
    assert summarize("model", {"name": "vgg", "blocks": 3, "filters": [64, 128, 256, 256, 512, 512], "dense": 256,
                               "dropout": 0.25, "dense_dropout": 0.5, "width": 1.0, "l2": 0.0}) == "vgg(blocks=3)"
    assert summarize("balance", {"strategy": "oversample", "ratio": 0.5}) == "oversample(ratio=0.5)"


def test_docs_cover_every_field_and_the_example_is_valid():
    import re

    from cnntree.spec.sections import DATA, SECTIONS, SPLIT, TOP

    doc = (ROOT / "docs" / "spec.md").read_text()
    documented = set(re.findall(r"`([a-z_0-9]+)`", doc))
    keys = set(TOP) | set(DATA.fields) | {k for v in SPLIT.variants.values() for k in v}
    for schema in SECTIONS.values():
        if hasattr(schema, "variants"):
            keys |= set(schema.variants) | {k for v in schema.variants.values() for k in v}
        else:
            keys |= set(schema.fields)
    for nested in ("optimizer", "schedule"):
        variants = SECTIONS["train"].fields[nested].variants
        keys |= set(variants) | {k for v in variants.values() for k in v}
    assert sorted(keys - documented) == []
    example = json.loads(doc.split("```json")[-1].split("```")[0])
    spec = parse_spec(example)
    assert spec.node("root").groups[0] == ("happy", "surprise")
    assert [n.id for n in spec.nodes] == ["root", "root.0", "negative"]
