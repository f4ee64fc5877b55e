"""Reading a model folder (``meta.json``, ``spec.json``, the networks, ``climbing.json``), every part
checked, without building a classifier: ``storage.load`` builds one from it, and a tree's flat start
reads its flat network with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CnnTreeError
from ..files import recover_folder
from ..nets.runtime import Columns, load_network, one_pass_columns
from ..spec import Spec, parse_spec
from ..spec.schema import Ident, ListOf, Nullable, Num, Obj, Passthrough, Text, load_json
from . import answers as climbing
from .calibration import CALIBRATIONS, make_calibration

_probability = Num(lo=0, hi=1, lo_open=True)
META = Obj({  # what load trusts in meta.json; the rest (histories, timings) is only reported
    "networks": ListOf(Obj({"id": Ident(), "groups": ListOf(ListOf(Text(), min_len=1), min_len=1),
                            "file": Text(max_len=300), "val_accuracy": Nullable(Num(lo=0, hi=1)),
                            # a node's outputs inside a one-pass network (a shared trunk's), else null
                            "columns": Nullable(ListOf(Num(lo=0, hi=100000, integer=True), min_len=2, max_len=2)),
                            "priors": Nullable(Obj({"train": ListOf(_probability, min_len=1),
                                                    "true": ListOf(_probability, min_len=1)})),
                            # fitted after training; absent in models saved before calibration was fitted
                            "calibration": Nullable(Obj({"method": Text(choices=list(CALIBRATIONS)),
                                                         "state": Passthrough()}))}),
                       min_len=1, max_len=256),
    **{key: Passthrough() for key in ("format", "name", "kind", "classes", "default_mode", "exported", "histories",
                                       "fit_seconds", "overrides", "finetune")},
})


@dataclass
class SavedModel:
    """A model folder's parts, checked: its spec, networks (on their runtimes) and fitted state."""

    spec: Spec
    networks: dict
    val_accuracy: dict = field(default_factory=dict)
    priors: dict = field(default_factory=dict)
    histories: dict = field(default_factory=dict)
    calibrations: dict = field(default_factory=dict)
    climbing: dict | None = None


def read_model(directory) -> SavedModel:
    """The parts of a saved or exported classifier (or a shipped one, by name)."""
    from ..pretrained import resolve

    directory = resolve(directory)
    recover_folder(directory)
    if not directory.is_dir():
        raise CnnTreeError(f"{directory}: no such model directory")
    if not (directory / "meta.json").exists():
        raise CnnTreeError(f"{directory}: not a cnntree model directory (no meta.json)")
    meta = load_json(directory / "meta.json", "model metadata")
    raw = load_json(directory / "spec.json", "model spec")
    try:
        entries = META.parse(meta, "meta.json")["networks"]
    except CnnTreeError as error:
        raise CnnTreeError(f"{directory}: damaged model directory ({error})") from None
    overrides = meta.get("overrides") if isinstance(meta.get("overrides"), dict) else {}
    spec = parse_spec(raw, source=str(directory / "spec.json"), base_dir=directory)
    if overrides:
        from ..spec import with_overrides

        try:
            spec = with_overrides(spec, **{k: v for k, v in overrides.items()
                                           if k != "data" or (isinstance(v, str) and Path(v).exists())})
        except (TypeError, CnnTreeError) as error:
            raise CnnTreeError(f"{directory / 'meta.json'}: damaged overrides ({error})") from None
    nodes = {n.id: n for n in spec.nodes}
    if sorted(e["id"] for e in entries) != sorted(nodes):
        raise CnnTreeError(f"{directory / 'meta.json'}: lists networks {sorted(e['id'] for e in entries)}, the "
                           f"spec has {sorted(nodes)}")
    networks, val_accuracy, priors, calibrations, files = {}, {}, {}, {}, {}
    for entry in entries:
        node = nodes[entry["id"]]
        where = f"{directory / 'meta.json'}: networks[{entry['id']}]"
        if [list(g) for g in node.groups] != entry["groups"]:
            raise CnnTreeError(f"{where}: groups {entry['groups']} differ from the spec's")
        path = inside(directory, entry["file"], where)
        if path.resolve() not in files:  # a one-pass network is loaded once for all its nodes
            files[path.resolve()] = load_network(path)
        network = files[path.resolve()]
        if entry.get("columns") is not None:
            network = _columns(network, entry["columns"], f"{where}.columns")
        if network.outputs != len(node.groups):
            raise CnnTreeError(f"{directory / entry['file']}: a network with {network.outputs} outputs where "
                               f"{entry['id']} has {len(node.groups)} groups (network files swapped?)")
        networks[node.id] = network
        if entry["priors"] is not None:
            for key in ("train", "true"):
                if len(entry["priors"][key]) != len(node.groups):
                    raise CnnTreeError(f"{where}.priors.{key}: {len(entry['priors'][key])} values for "
                                       f"{len(node.groups)} groups")
            priors[node.id] = entry["priors"]
        if entry["val_accuracy"] is not None:
            val_accuracy[node.id] = entry["val_accuracy"]
        if entry["calibration"] is not None:
            calibrations[node.id] = make_calibration(entry["calibration"]["method"], priors.get(node.id),
                                                     entry["calibration"]["state"], len(node.groups),
                                                     f"{where}.calibration.state")
    histories = meta.get("histories") if isinstance(meta.get("histories"), dict) else {}
    return SavedModel(spec, networks, val_accuracy, priors, histories, calibrations, climbing.read(directory))




def _columns(network, columns: list[int], where: str) -> Columns:
    """A node's ``columns`` of a one-pass network, checked against its output (and, on Keras, the
    node's own model inside it)."""
    start, stop = columns
    if not 0 <= start < stop <= network.outputs:
        raise CnnTreeError(f"{where}: {columns} is not a range of the network's {network.outputs} outputs")
    if not hasattr(network, "model"):  # an exported network: its columns are all there is to check
        return Columns(network, start, stop)
    from ..nets.heads import NODES, node_models

    if NODES not in {layer.name for layer in network.model.layers}:
        raise CnnTreeError(f"{where}: the network has no \"{NODES}\" layer: not a one-pass tree")
    models = node_models(network.model)
    nodes = {(c.start, c.stop): c for c in one_pass_columns(network, [int(m.output_shape[-1]) for m in models], models)}
    if (start, stop) not in nodes:
        raise CnnTreeError(f"{where}: {columns} are not one node's outputs of the network")
    return nodes[start, stop]


def inside(directory: Path, relative: str, where: str) -> Path:
    """``directory / relative``, refused when it leads outside ``directory`` (absolute, ``..``, symlinks)."""
    path = directory / relative
    if Path(relative).is_absolute() or not path.resolve().is_relative_to(directory.resolve()):
        raise CnnTreeError(f"{where}: file {relative!r} lies outside the model directory")
    return path
