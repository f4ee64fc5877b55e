"""The JSON spec becomes :class:`Spec`: validated, defaults inherited, list groups made nodes.

A spec names a classifier of one of three kinds. Every kind is made of *networks*
(:class:`NodeSpec`): a tree has one per internal node, a single network has one, a voting
ensemble one per member. Each network sees some classes, grouped into the outputs it predicts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from ..errors import CnnTreeError
from .graph import hierarchy_graph, root_first, voting_graph
from .overrides import FIELDS, apply_to_data, apply_to_finetune, apply_to_network
from .schema import Obj, Passthrough, did_you_mean, fail, load_json
from .sections import MEMBER_KEYS, NODE_KEYS, SECTIONS, TOP


@dataclass(frozen=True)
class NodeSpec:
    """One network: which classes it sees, how they are grouped into its outputs, how it is built."""

    id: str
    groups: tuple[tuple[str, ...], ...]  # output k predicts "one of groups[k]"
    children: tuple[str, ...]  # per group: a node id, or a class name for a leaf
    model: dict
    augment: dict
    train: dict
    balance: dict
    where: str = ""  # the JSON path it was declared at, for messages

    @property
    def classes(self) -> tuple[str, ...]:
        """Every class this network sees, in group order."""
        return tuple(c for g in self.groups for c in g)

    def settings(self) -> dict:
        """What this network's training is made of (its MLflow run's params)."""
        return {"model": self.model, "augment": self.augment, "train": self.train, "balance": self.balance,
                "groups": ["+".join(g) for g in self.groups]}


@dataclass(frozen=True)
class Spec:
    """A validated spec: its classes, data, and networks (root first for a tree), with the graph."""

    name: str
    kind: str
    classes: tuple[str, ...]
    data: dict
    defaults: dict
    nodes: tuple[NodeSpec, ...]  # tree: root first; single: one; voting: the members
    graph: nx.DiGraph = field(compare=False)
    voting: str | None = None
    description: str | None = None
    source: str = "<spec>"
    base_dir: Path = Path(".")
    raw: dict = field(default_factory=dict, compare=False)
    overrides: dict = field(default_factory=dict)  # see spec.overrides: applied to every network and the data
    init: dict = field(default_factory=lambda: {"from": None})  # the flat classifier the networks start from
    finetune: dict = field(default_factory=lambda: {"epochs": 0})  # joint fine-tuning of a tree's nodes
    trunk: dict = field(default_factory=lambda: {"shared": False, "heads": "groups"})  # nodes as heads on one backbone

    def __repr__(self) -> str:  # short: an estimator's repr and a test's id show it
        changed = f", overrides={self.overrides}" if self.overrides else ""
        return f"Spec(name={self.name!r}, kind={self.kind!r}, source={self.source!r}{changed})"

    def init_source(self) -> str | None:
        """``init.from`` as given on the command line (``--init-from``), else as the spec has it: a
        path relative to the spec file's folder, an MLflow run id, or a shipped model name."""
        if "init_from" in self.overrides:
            return self.overrides["init_from"]
        given = self.init["from"]
        if given is not None and (self.base_dir / given).exists():
            return os.path.normpath(os.path.abspath(self.base_dir / given))
        return given

    @property
    def root(self) -> NodeSpec:
        """The first network: a tree's root, a single network, an ensemble's first member."""
        return self.nodes[0]

    def node(self, node_id: str) -> NodeSpec:
        """The network with id ``node_id``; a one-line error naming the close ids otherwise."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise CnnTreeError(f"{self.source}: no node \"{node_id}\"{did_you_mean(node_id, [n.id for n in self.nodes])}; "
                           f"nodes are {', '.join(n.id for n in self.nodes)}")

    def data_path(self) -> str:
        """The spec's data path: "sample", or a path resolved against the spec file's folder."""
        path = self.data["path"]
        return path if path == "sample" else os.path.normpath(os.path.abspath(self.base_dir / path))


def load_spec(path) -> Spec:
    """Read, validate and build a spec file; every error names the file and the JSON path."""
    return parse_spec(load_json(path, "spec"), source=str(path), base_dir=Path(path).parent)


def trains_first(source) -> bool:
    """Whether ``init.from`` names a single-network spec that is trained first (a ``.json`` file),
    rather than a trained flat network (a model folder, a shipped name, a run id)."""
    return str(source).endswith(".json")


def parse_spec(raw, source: str = "<spec>", base_dir=".", overrides: dict | None = None) -> Spec:
    """Build a spec from its JSON value; ``overrides`` (see :mod:`cnntree.spec.overrides`) are applied
    to every network and to the data."""
    try:
        return _parse(raw, source, Path(base_dir), overrides or {})
    except CnnTreeError as error:
        raise CnnTreeError(f"{source}: {error}") from None


def _parse(raw, source: str, base_dir: Path, overrides: dict) -> Spec:
    if not isinstance(raw, dict):
        fail("", "a spec is a JSON object at the top level")
    top = Obj(TOP).parse(raw, "")
    kind, classes, defaults = top["kind"], tuple(top["classes"]), top["defaults"]
    for key, allowed_kind in (("nodes", "tree"), ("members", "voting"), ("voting", "voting")):
        if top[key] is not None and kind != allowed_kind:
            fail(key, f'is only used when kind is "{allowed_kind}" (this spec\'s kind is "{kind}")')
    if top["finetune"]["epochs"] and kind != "tree":
        fail("finetune", f'joint fine-tuning composes a tree\'s nodes; this spec\'s kind is "{kind}"')
    if top["trunk"]["shared"] and kind != "tree":
        fail("trunk.shared", f'shares one backbone between a tree\'s nodes; this spec\'s kind is "{kind}"')
    if top["trunk"]["shared"] and not top["finetune"]["epochs"]:
        fail("trunk.shared", "a shared trunk trains all nodes together: give finetune.epochs (at least 1)")
    if top["trunk"]["heads"] != "groups" and not top["trunk"]["shared"]:
        fail("trunk.heads", "shapes the heads of a shared trunk: set trunk.shared to true")
    if top["trunk"]["branch_at"] is not None and not top["trunk"]["shared"]:
        fail("trunk.branch_at", "says where a shared trunk branches: set trunk.shared to true")
    if top["trunk"]["branch_at"] == 0:
        fail("trunk.branch_at", "blocks count from 1 (-1: the last block); give null for no branch")
    if top["finetune"]["epochs"] and not any(top["finetune"]["loss"].values()):
        fail("finetune.loss", "every weight is 0, so joint fine-tuning would train on a zero loss: give path, "
             "nodes or flat a positive weight, or finetune.epochs 0")
    if top["finetune"]["trunk_lr"] != 1 and not top["trunk"]["shared"]:
        fail("finetune.trunk_lr", "slows a shared trunk: set trunk.shared to true, or the rate to 1")
    if top["finetune"]["loss"]["flat"] and not top["trunk"]["shared"]:
        fail("finetune.loss.flat", "the flat head sits on a shared trunk: set trunk.shared to true, or the weight to 0")
    init = overrides.get("init_from") or top["init"]["from"]
    fixed = bool(init) and not trains_first(init)  # the networks must match a saved flat network as it is
    for name in top["data"]["drop"]:
        if name in classes:
            fail("data.drop", f'"{name}" is dropped but listed in classes')
    if kind == "tree":
        if top["nodes"] is None:
            fail("nodes", 'is required when kind is "tree"')
        nodes = _tree_nodes(raw["nodes"], classes, defaults, overrides, fixed)
        graph = hierarchy_graph(nodes, classes)
        nodes = root_first(nodes, graph)
        if top["trunk"]["shared"]:
            for node in nodes[1:]:
                if node.model != nodes[0].model:
                    fail(f"{node.where}.model", f"differs from {nodes[0].id}'s; the nodes of a shared trunk have "
                         "one model section")
        if top["trunk"]["shared"] and any(node.train["freeze_trunk_epochs"] for node in nodes):
            fail("train.freeze_trunk_epochs", "the nodes of a shared trunk train only jointly: use finetune.freeze_trunk")
    elif kind == "single":
        nodes = [_network("net", [[c] for c in classes], list(classes), {}, defaults, "defaults", overrides, fixed)]
        graph = hierarchy_graph(nodes, classes)
    else:
        if top["members"] is None:
            fail("members", 'is required when kind is "voting"')
        nodes = _members(raw["members"], classes, defaults, overrides, fixed)
        graph = voting_graph(nodes, classes)
    frozen = next((node for node in nodes if node.train["freeze_trunk_epochs"]), None)
    if frozen is not None and not init:
        fail(f"{frozen.where}.train.freeze_trunk_epochs", "freezes a warm-started trunk; give init.from (a flat "
             "network to start from) or set it to 0")
    return Spec(name=top["name"], kind=kind, classes=classes, data=apply_to_data(top["data"], overrides),
                defaults=defaults, overrides=dict(overrides),
                nodes=tuple(nodes), graph=graph, voting=top["voting"] or ("soft" if kind == "voting" else None),
                description=top["description"], source=source, base_dir=base_dir, raw=raw, init=top["init"],
                finetune=apply_to_finetune(top["finetune"], overrides) if kind == "tree" else top["finetune"],
                trunk=top["trunk"])


def _network(node_id, groups, children, raw: dict, defaults: dict, where: str, overrides: dict,
             fixed: bool = False) -> NodeSpec:
    settings = apply_to_network({key: schema.parse(raw[key], f"{where}.{key}", defaults[key]) if key in raw
                                 else defaults[key] for key, schema in SECTIONS.items()}, overrides, fixed)
    return NodeSpec(id=node_id, groups=tuple(tuple(g) for g in groups), children=tuple(children),
                    where=where, **settings)


def _settings_keys(extra: dict) -> dict:
    return {**extra, **{key: Passthrough() for key in SECTIONS}}


def _members(raw_members: list, classes, defaults, overrides, fixed: bool) -> list[NodeSpec]:
    if len(raw_members) < 2:
        fail("members", f"a voting ensemble needs at least 2 members, got {len(raw_members)}")
    members, seen = [], {}
    for i, raw in enumerate(raw_members):
        where = f"members[{i}]"
        Obj(_settings_keys(MEMBER_KEYS)).parse(raw, where)
        if raw["id"] in seen:
            fail(f"{where}.id", f'"{raw["id"]}" is already the id of {seen[raw["id"]]}')
        seen[raw["id"]] = where
        members.append(_network(raw["id"], [[c] for c in classes], list(classes), raw, defaults, where, overrides, fixed))
    return members


def _tree_nodes(raw_nodes: list, classes, defaults, overrides, fixed: bool) -> list[NodeSpec]:
    """Nodes as declared, with child references checked and list groups turned into sub-nodes."""
    if not raw_nodes:
        fail("nodes", "a tree needs at least one node")
    declared = {}
    for i, raw in enumerate(raw_nodes):
        Obj(_settings_keys(NODE_KEYS)).parse(raw, f"nodes[{i}]")
        node_id = raw["id"]
        if node_id in declared:
            fail(f"nodes[{i}].id", f'"{node_id}" is already the id of nodes[{declared[node_id]}]')
        if node_id in classes:
            fail(f"nodes[{i}].id", f'"{node_id}" is a class name; node ids and class names must differ')
        declared[node_id] = i
    nodes, seen_child = [], {}
    for i, raw in enumerate(raw_nodes):
        children = []
        for j, group in enumerate(raw["children"]):
            where = f"nodes[{i}].children[{j}]"
            if isinstance(group, str):
                _check_name(group, classes, declared, where)
                children.append(group)
            elif len(group) == 1:
                _check_name(group[0], classes, {}, f"{where}[0]")
                children.append(group[0])
            else:
                for k, name in enumerate(group):
                    _check_name(name, classes, {}, f"{where}[{k}]")
                sub_id = f"{raw['id']}.{j}"
                if sub_id in declared:
                    fail(where, f'the node made for this list would be called "{sub_id}", an id already declared')
                nodes.append(_network(sub_id, [[c] for c in group], group, raw, defaults, f"nodes[{i}]", overrides, fixed))
                children.append(sub_id)
            child = children[-1]
            if child in seen_child:
                what = "class" if child in classes else "node"
                fail(where, f'{what} "{child}" already appears at {seen_child[child]}')
            seen_child[child] = where
        nodes.append(_network(raw["id"], [], children, raw, defaults, f"nodes[{i}]", overrides, fixed))
    return nodes


def _check_name(name, classes, node_ids, where):
    if not isinstance(name, str):
        fail(where, "expected a class name")
    if name not in classes and name not in node_ids:
        what = "class or node" if node_ids else "class"
        fail(where, f'unknown {what} "{name}"{did_you_mean(name, list(classes) + list(node_ids))}')


def with_overrides(spec, **given):
    """The same spec with ``given`` overrides on top of those it already has; None leaves a setting
    as the spec has it. ``data`` is a path (made absolute here) or ``"sample"``."""
    checked = {key: FIELDS[key].parse(value, f"override {key}") for key, value in given.items()
               if value is not None and key in FIELDS}
    unknown = set(given) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown override(s): {', '.join(sorted(unknown))}")
    if checked.get("data") not in (None, "sample"):
        checked["data"] = str(Path(checked["data"]).absolute())
    if checked.get("init_from") and Path(checked["init_from"]).exists():
        checked["init_from"] = str(Path(checked["init_from"]).absolute())
    if not checked:
        return spec
    return parse_spec(spec.raw, source=spec.source, base_dir=spec.base_dir, overrides={**spec.overrides, **checked})
