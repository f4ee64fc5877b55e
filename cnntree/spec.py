"""The JSON spec: its schema, its validation, and the one place where it becomes a graph.

A spec names a classifier of one of three kinds. Every kind is made of *networks*
(:class:`NodeSpec`): a tree has one per internal node, a single network has one, a voting
ensemble one per member. Each network sees some classes, grouped into the outputs it predicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from .errors import CnnTreeError
from .schema import Bool, Either, Ident, ListOf, MapOf, Num, Obj, Passthrough, Tagged, Text, did_you_mean, fail, load_json

FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
KINDS = ("tree", "single", "voting")
MAX_CLASSES = 256
MAX_NETWORKS = 256  # a tree over 256 classes has at most 255 inner nodes

_seed = Num(0, lo=0, hi=2**31 - 1, integer=True)


def _l2(default=0.0):
    return Num(default, lo=0, hi=1)


def _dropout(default):
    return Num(default, lo=0, hi=0.95)


def _width():
    return Num(1.0, lo=0.05, hi=4)  # multiplies every layer's filter count


def _channels(default: list[int]):
    return ListOf(Num(lo=1, hi=4096, integer=True), default, min_len=1, max_len=8)


def _units(default: int):
    return Num(default, lo=1, hi=65536, integer=True)


MODEL = Tagged("name", {
    "lenet": {"filters": _channels([64, 128, 160]), "dense": _units(160), "dropout": _dropout(0.0), "l2": _l2()},
    "vgg": {"blocks": Num(4, lo=1, hi=6, integer=True), "filters": _channels([64, 128, 256, 256, 512, 512]),
            "dense": _units(256), "dropout": _dropout(0.25), "dense_dropout": _dropout(0.5),
            "width": _width(), "l2": _l2()},
    "mini_xception": {"width": _width(), "l2": _l2(0.01)},
    "mobilenet_v2": {"widths": _channels([256, 256, 512, 512]), "expansion": Num(1, lo=1, hi=8, integer=True),
                     "dense": _units(128), "dropout": _dropout(0.2), "l2": _l2()},
    "vggnet": {"width": _width(), "dropout": _dropout(0.2), "l2": _l2()},
}, default={"name": "vgg"})

AUGMENT = Obj({
    "rotation": Num(0.0, lo=0, hi=180),          # degrees, +-
    "width_shift": Num(0.0, lo=0, hi=1),         # fraction of the width, +-
    "height_shift": Num(0.0, lo=0, hi=1),
    "zoom": Num(0.0, lo=0, hi=1),                # scale in [1 - zoom, 1 + zoom]
    "shear": Num(0.0, lo=0, hi=80),              # degrees, +- (Keras ImageDataGenerator's unit)
    "h_flip": Bool(False),
    "noise": Num(0.0, lo=0, hi=1),               # Gaussian std as a fraction of 255
    "brightness": ListOf(Num(lo=0, hi=10), [1.0, 1.0], min_len=2, max_len=2),  # multiply range
    "salt_pepper": Num(0.0, lo=0, hi=0.5),       # fraction of pixels
    "blur": Num(0.0, lo=0, hi=10),               # Gaussian sigma in pixels
    "fog": Num(0.0, lo=0, hi=1),                 # probability of a cloud-like overlay
    "crop": Num(0, lo=0, hi=48, integer=True),   # random crop size (0: off), resized back
    "erasing": Num(0.0, lo=0, hi=1),             # probability of random erasing
    "p": Num(1.0, lo=0, hi=1),                   # probability of each geometric transform
    "test_time": Text("none", choices=["none", "flip", "ten_crop"]),
}, default={})

OPTIMIZER = Tagged("name", {
    "adam": {"lr": Num(1e-3, lo=0, hi=10, lo_open=True), "beta_1": Num(0.9, lo=0, hi=1),
             "beta_2": Num(0.999, lo=0, hi=1), "weight_decay": Num(0.0, lo=0, hi=1)},
    "adamw": {"lr": Num(1e-3, lo=0, hi=10, lo_open=True), "beta_1": Num(0.9, lo=0, hi=1),
              "beta_2": Num(0.999, lo=0, hi=1), "weight_decay": Num(1e-4, lo=0, hi=1)},
    "sgd": {"lr": Num(1e-2, lo=0, hi=10, lo_open=True), "momentum": Num(0.9, lo=0, hi=1),
            "nesterov": Bool(False), "weight_decay": Num(0.0, lo=0, hi=1)},
}, default={"name": "adam"})

SCHEDULE = Tagged("name", {
    "constant": {},
    "exponential": {"gamma": Num(0.95, lo=0, hi=1, lo_open=True)},
    "plateau": {"factor": Num(0.5, lo=0, hi=1, lo_open=True), "patience": Num(5, lo=1, hi=1000, integer=True),
                "min_lr": Num(1e-6, lo=0, hi=1)},
    "cosine": {"min_lr": Num(0.0, lo=0, hi=1)},
    "cosine_restarts": {"first_epochs": Num(10, lo=1, hi=10000, integer=True), "t_mul": Num(2.0, lo=1, hi=10),
                        "m_mul": Num(1.0, lo=0, hi=1, lo_open=True), "min_lr": Num(0.0, lo=0, hi=1)},
    "one_cycle": {"max_lr": Num(1e-2, lo=0, hi=10, lo_open=True), "pct_start": Num(0.3, lo=0, hi=1, lo_open=True)},
    "step": {"every": Num(10, lo=1, hi=10000, integer=True), "gamma": Num(0.1, lo=0, hi=1, lo_open=True)},
}, default={"name": "constant"})

TRAIN = Obj({
    "epochs": Num(30, lo=1, hi=10000, integer=True),
    "batch_size": Num(64, lo=1, hi=8192, integer=True),
    "optimizer": OPTIMIZER,
    "schedule": SCHEDULE,
    "loss": Text("categorical_crossentropy", choices=["categorical_crossentropy", "mse", "squared_hinge"]),
    "label_smoothing": Num(0.0, lo=0, hi=0.5),
    "early_stopping": Num(0, lo=0, hi=10000, integer=True),  # patience in epochs; 0: off
    "restore_best": Bool(True),
    "normalize": Text("unit", choices=["unit", "symmetric"]),  # x/255, or (x/255 - 0.5) * 2
    "seed": _seed,
    "workers": Num(1, lo=1, hi=256, integer=True),  # processes augmenting batches; results do not depend on it
}, default={})

_calibrate = Text("prior", choices=["prior", "none"])  # undo the resampling's prior shift at prediction
BALANCE = Tagged("strategy", {
    "oversample": {"ratio": Num(0.8, lo=0, hi=4, lo_open=True), "calibrate": _calibrate},
    "one_vs_rest": {"calibrate": _calibrate},
    "class_weight": {"calibrate": _calibrate},
    "none": {"calibrate": _calibrate},
}, default={"strategy": "oversample"})

SECTIONS = {"model": MODEL, "augment": AUGMENT, "train": TRAIN, "balance": BALANCE}

SPLIT = Tagged("scheme", {
    "usage": {"train": Text("Training"), "test": ListOf(Text(), ["PublicTest", "PrivateTest"], min_len=1, unique=True)},
    "random": {"test_fraction": Num(0.2, lo=0, hi=1, lo_open=True), "seed": _seed},
    "kfold": {"folds": Num(5, lo=2, hi=100, integer=True), "fold": Num(0, lo=0, hi=99, integer=True),
              "group_regex": Text(None, nullable=True), "seed": _seed},
}, default={"scheme": "usage"})

DATA = Obj({
    "path": Text("sample"),
    "split": SPLIT,
    "validation": Obj({"from": Text("Training"), "fraction": Num(0.1, lo=0, hi=1, lo_open=True)}, default={}),
    "drop": ListOf(Text(), [], unique=True),
    "label_map": MapOf(Text(), {}),
    "skip_bad": Bool(False),
}, default={})

_class = Text(max_len=64)
_group = Either(_class, ListOf(_class, min_len=1, unique=True),
                expected="a class name, a node id or a list of class names")
NODE_KEYS = {"id": Ident(), "children": ListOf(_group, min_len=2), "description": Text(None, nullable=True)}
MEMBER_KEYS = {"id": Ident(), "description": Text(None, nullable=True)}

TOP = {
    "name": Ident(), "kind": Text("tree", choices=list(KINDS)), "description": Text(None, nullable=True),
    "classes": ListOf(_class, list(FER2013_CLASSES), min_len=2, max_len=MAX_CLASSES, unique=True),
    "data": DATA, "defaults": Obj(SECTIONS, default={}),
    "nodes": ListOf(Passthrough(), None, max_len=MAX_NETWORKS),
    "members": ListOf(Passthrough(), None, max_len=MAX_NETWORKS),
    "voting": Text(None, choices=["hard", "soft", "weighted"], nullable=True),
}


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
        return tuple(c for g in self.groups for c in g)


@dataclass(frozen=True)
class Spec:
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

    @property
    def root(self) -> NodeSpec:
        return self.nodes[0]

    def node(self, node_id: str) -> NodeSpec:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise CnnTreeError(f"{self.source}: no node \"{node_id}\"{did_you_mean(node_id, [n.id for n in self.nodes])}; "
                           f"nodes are {', '.join(n.id for n in self.nodes)}")

    def data_path(self) -> str:
        """The spec's data path: "sample", or a path resolved against the spec file's folder."""
        path = self.data["path"]
        return path if path == "sample" else str((self.base_dir / path).resolve())


def load_spec(path) -> Spec:
    """Read, validate and build a spec file; every error names the file and the JSON path."""
    return parse_spec(load_json(path, "spec"), source=str(path), base_dir=Path(path).parent)


def parse_spec(raw, source: str = "<spec>", base_dir=".") -> Spec:
    try:
        return _parse(raw, source, Path(base_dir))
    except CnnTreeError as error:
        raise CnnTreeError(f"{source}: {error}") from None


def _parse(raw, source: str, base_dir: Path) -> Spec:
    if not isinstance(raw, dict):
        fail("", "a spec is a JSON object at the top level")
    top = Obj(TOP).parse(raw, "")
    kind, classes, defaults = top["kind"], tuple(top["classes"]), top["defaults"]
    for key, allowed_kind in (("nodes", "tree"), ("members", "voting"), ("voting", "voting")):
        if top[key] is not None and kind != allowed_kind:
            fail(key, f'is only used when kind is "{allowed_kind}" (this spec\'s kind is "{kind}")')
    for name in top["data"]["drop"]:
        if name in classes:
            fail("data.drop", f'"{name}" is dropped but listed in classes')
    if kind == "tree":
        if top["nodes"] is None:
            fail("nodes", 'is required when kind is "tree"')
        nodes = _tree_nodes(raw["nodes"], classes, defaults)
        graph = hierarchy_graph(nodes, classes)
        nodes = _root_first(nodes, graph)
    elif kind == "single":
        nodes = [_network("net", [[c] for c in classes], [c for c in classes], {}, defaults, "defaults")]
        graph = hierarchy_graph(nodes, classes)
    else:
        if top["members"] is None:
            fail("members", 'is required when kind is "voting"')
        nodes = _members(raw["members"], classes, defaults)
        graph = _voting_graph(nodes, classes)
    return Spec(name=top["name"], kind=kind, classes=classes, data=top["data"], defaults=defaults,
                nodes=tuple(nodes), graph=graph, voting=top["voting"] or ("soft" if kind == "voting" else None),
                description=top["description"], source=source, base_dir=base_dir, raw=raw)


def _network(node_id, groups, children, raw: dict, defaults: dict, where: str) -> NodeSpec:
    settings = {key: schema.parse(raw[key], f"{where}.{key}", defaults[key]) if key in raw else defaults[key]
                for key, schema in SECTIONS.items()}
    return NodeSpec(id=node_id, groups=tuple(tuple(g) for g in groups), children=tuple(children),
                    where=where, **settings)


def _settings_keys(extra: dict) -> dict:
    return {**extra, **{key: Passthrough() for key in SECTIONS}}


def _members(raw_members: list, classes, defaults) -> list[NodeSpec]:
    if len(raw_members) < 2:
        fail("members", f"a voting ensemble needs at least 2 members, got {len(raw_members)}")
    members, seen = [], {}
    for i, raw in enumerate(raw_members):
        where = f"members[{i}]"
        Obj(_settings_keys(MEMBER_KEYS)).parse(raw, where)
        if raw["id"] in seen:
            fail(f"{where}.id", f'"{raw["id"]}" is already the id of {seen[raw["id"]]}')
        seen[raw["id"]] = where
        members.append(_network(raw["id"], [[c] for c in classes], list(classes), raw, defaults, where))
    return members


def _tree_nodes(raw_nodes: list, classes, defaults) -> list[NodeSpec]:
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
                nodes.append(_network(sub_id, [[c] for c in group], group, raw, defaults, f"nodes[{i}]"))
                children.append(sub_id)
            child = children[-1]
            if child in seen_child:
                what = "class" if child in classes else "node"
                fail(where, f'{what} "{child}" already appears at {seen_child[child]}')
            seen_child[child] = where
        nodes.append(_network(raw["id"], [], children, raw, defaults, f"nodes[{i}]"))
    return nodes


def _check_name(name, classes, node_ids, where):
    if not isinstance(name, str):
        fail(where, "expected a class name")
    if name not in classes and name not in node_ids:
        what = "class or node" if node_ids else "class"
        fail(where, f'unknown {what} "{name}"{did_you_mean(name, list(classes) + list(node_ids))}')


def hierarchy_graph(nodes: list[NodeSpec], classes) -> nx.DiGraph:
    """The spec as a rooted tree: networks are inner nodes, classes are leaves.

    This is the single place where a spec becomes a graph; it checks one root, no cycle, and
    that every class is a leaf exactly once.
    """
    graph = nx.DiGraph()
    for node in nodes:
        graph.add_node(node.id, kind="node", where=node.where)
    for cls in classes:
        graph.add_node(cls, kind="class")
    for node in nodes:
        for child in node.children:
            graph.add_edge(node.id, child)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        loop = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        fail("nodes", f"the hierarchy has a cycle: {loop}")
    roots = [n.id for n in nodes if graph.in_degree(n.id) == 0]
    if len(roots) != 1:
        fail("nodes", f"a tree has exactly one root, found {len(roots)}: {', '.join(roots)} "
                      "(make the others children of a node)")
    twice = [c for c in classes if graph.in_degree(c) > 1]
    if twice:
        places = " and ".join(graph.nodes[p]["where"] for p in graph.predecessors(twice[0]))
        fail("nodes", f'class "{twice[0]}" is placed twice ({places}); every class must be a leaf exactly once')
    missing = [c for c in classes if graph.in_degree(c) == 0]
    if missing:
        fail("nodes", f'class{"es" if len(missing) > 1 else ""} {", ".join(map(repr, missing))} '
                      "not placed in the tree (every class must be a leaf once)")
    graph.graph["root"] = roots[0]
    return graph


def _root_first(nodes: list[NodeSpec], graph: nx.DiGraph) -> list[NodeSpec]:
    """Nodes in breadth-first order from the root, each with its groups of leaf classes.

    Leaf sets are gathered once, children before parents, so a deep chain costs linear time.
    """
    order = list(nx.bfs_tree(graph, graph.graph["root"]))
    rank = {name: k for k, name in enumerate(n for n in graph if graph.nodes[n]["kind"] == "class")}
    leaves: dict[str, list[str]] = {}
    for name in reversed(order):
        leaves[name] = [name] if graph.nodes[name]["kind"] == "class" else \
            [c for child in graph.successors(name) for c in leaves[child]]
    by_id = {n.id: n for n in nodes}
    return [NodeSpec(**{**by_id[name].__dict__,
                        "groups": tuple(tuple(sorted(leaves[child], key=rank.get)) for child in by_id[name].children)})
            for name in order if name in by_id]


def _voting_graph(members: list[NodeSpec], classes) -> nx.DiGraph:
    graph = nx.DiGraph()
    for member in members:
        graph.add_node(member.id, kind="node", where=member.where)
        for cls in classes:
            graph.add_edge(member.id, cls)
    for cls in classes:
        graph.nodes[cls]["kind"] = "class"
    return graph


def summarize(section: str, config: dict) -> str:
    """A section as a short string showing only what differs from the schema's defaults.

    ``summarize("model", {"name": "vgg", "blocks": 3, ...})`` -> ``"vgg(blocks=3)"``.
    """
    schema = SECTIONS[section]
    tag = config.get(schema.tag) if isinstance(schema, Tagged) else None
    defaults = schema.parse({schema.tag: tag} if tag else {}, section)
    changed = [f"{k}={v}" if not isinstance(v, bool) else (k if v else f"no {k}")
               for k, v in config.items() if k != getattr(schema, "tag", None) and v != defaults.get(k)]
    inner = ", ".join(changed)
    if tag:
        return f"{tag}({inner})" if inner else tag
    return inner or "none"


def with_training(spec: Spec, **settings) -> Spec:
    """The same spec with every network's ``train`` keys set to ``settings`` (a defaults override,
    e.g. ``seed=1`` or ``workers=8``); None values leave a key as the spec has it."""
    settings = {k: v for k, v in settings.items() if v is not None}
    if not settings:
        return spec
    raw = json.loads(json.dumps(spec.raw))
    raw.setdefault("defaults", {}).setdefault("train", {}).update(settings)
    for key in ("nodes", "members"):
        for entry in raw.get(key) or []:
            if isinstance(entry.get("train"), dict):
                for name in settings:
                    entry["train"].pop(name, None)
    return parse_spec(raw, source=spec.source, base_dir=spec.base_dir)
