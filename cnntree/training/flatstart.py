"""The flat classifier a tree or an ensemble starts from (``init.from``, ``--init-from``): a saved
single network, the one an MLflow run logged, or a single-network spec that is trained first, as
its own network of this training (its own MLflow child run, its own checkpoints, so it resumes).

Every network of the spec must have the flat network's trunk (the same architecture below the
output layer); ``nets.warmstart`` copies it in when each network's training starts.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ..compose.reading import SavedModel, read_model
from ..errors import CnnTreeError
from ..files import write_atomically
from ..nets.models import create_model
from ..nets.warmstart import trunk_mismatch
from ..spec import trains_first
from .nodes import faces_seen, network_job

FLAT = "flat"  # the flat network's id: its work folder and MLflow child run


@dataclass
class FlatStart:
    """A trained flat network on disk (``.keras``) and the classes of its outputs."""

    file: Path
    classes: tuple[str, ...]

    def groups_of(self, groups) -> list[list[int]] | None:
        """The flat outputs behind each group of class names (None when a class is not among them)."""
        if not {c for group in groups for c in group} <= set(self.classes):
            return None
        return [[self.classes.index(c) for c in group] for group in groups]


def flat_start(spec, images, labels, validation, work: Path, runner, printer, network_run=None,
               resolve_model=None) -> tuple[FlatStart | None, int]:
    """Find or train ``spec``'s flat network and check that every network can start from it; with
    the faces its training saw (0 for a saved one). ``resolve_model`` turns a logged reference (an
    MLflow run id) into a folder: the tracking layer passes its own, so training never imports
    tracking."""
    source = spec.init_source()
    if source is None:
        return None, 0
    where = f"init.from {source}"
    file = work / FLAT / "network.keras"
    seen = 0
    if trains_first(source):
        flat_spec = _flat_spec(spec, source, where)
        node = dataclasses.replace(flat_spec.root, id=FLAT)
        job, _ = network_job(flat_spec, node, f"{FLAT} 0/{len(spec.nodes)}", images, labels, validation, work / FLAT,
                             printer, network_run)
        ((_, model, state),) = runner.run([job], printer)
        seen, classes = faces_seen(job, state), flat_spec.classes
    else:
        model, classes = _saved_flat_network(source, where, resolve_model)
    _check_networks(spec, model, where)
    write_atomically(file, model.save)
    return FlatStart(file, tuple(classes)), seen


def check_init_source(spec, resolve_model=None) -> None:
    """Every check :func:`flat_start` makes of ``init.from``, made before a training deletes
    checkpoints or starts a run: the spec to train first, or the saved flat classifier, exists, is
    a single network with the spec's classes, and every network of the spec can start from it."""
    source = spec.init_source()
    if source is None:
        return
    where = f"init.from {source}"
    try:
        if trains_first(source):
            root = _flat_spec(spec, source, where).root
            flat = create_model(n_outputs=len(root.groups), normalize=root.train["normalize"], **root.model)
        else:
            flat, _ = _saved_flat_network(source, where, resolve_model)
        _check_networks(spec, flat, where)
    except CnnTreeError as error:
        raise CnnTreeError(str(error) if str(error).startswith(where) else f"{where}: {error}") from None


def _flat_spec(spec, source: str, where: str):
    from ..spec import load_spec, with_overrides

    given = {k: v for k, v in spec.overrides.items() if k not in ("init_from", "flat_epochs", "finetune_epochs")}
    if "flat_epochs" in spec.overrides:
        given["epochs"] = spec.overrides["flat_epochs"]
    flat_spec = with_overrides(load_spec(source), **given)
    if flat_spec.kind != "single":
        raise CnnTreeError(f"{where}: a spec to train first must be of kind \"single\", this one is \"{flat_spec.kind}\"")
    if flat_spec.classes != spec.classes:
        raise CnnTreeError(f"{where}: its classes {list(flat_spec.classes)} differ from {list(spec.classes)}")
    return flat_spec


def saved_flat(source: str, where: str, resolve_model=None) -> SavedModel:
    """A saved single-network classifier's parts (a folder, a shipped name, or, through
    ``resolve_model``, a logged reference such as an MLflow run id)."""
    from ..pretrained import resolve

    if resolve_model is not None:
        source = resolve_model(source)
    elif not resolve(source).exists():
        raise CnnTreeError(f"{where}: no such model folder or shipped model (an MLflow run resolves through "
                           "resolve_model=cnntree.models.model_dir, as cnntree train does)")
    flat = read_model(source)
    if flat.spec.kind != "single":
        raise CnnTreeError(f"{where}: a flat classifier (kind \"single\") is needed, this one is a {flat.spec.kind}")
    return flat


def epochs_spent(source: str, resolve_model=None) -> int:
    """How many epochs the saved flat network ``source`` trained (its own, as its history records them)."""
    where = f"init.from {source}"
    flat = saved_flat(source, where, resolve_model)
    history = flat.histories.get(flat.spec.root.id) or {}
    if not history.get("loss"):
        raise CnnTreeError(f"{where}: its history does not record the epochs it trained")
    return len(history["loss"])


def _saved_flat_network(source: str, where: str, resolve_model=None):
    """The Keras network of a saved single-network classifier and its classes."""
    flat = saved_flat(source, where, resolve_model)
    network = flat.networks[flat.spec.root.id]
    if not hasattr(network, "model"):
        raise CnnTreeError(f"{where}: an exported model ({network.name}); give a saved one (its .keras network)")
    return network.model, flat.spec.classes


def _check_networks(spec, flat, where: str) -> None:
    """One line naming the first network whose architecture differs from the flat network's. The
    trunk is what is compared, so networks of one model setting are built once (their outputs differ)."""
    checked = set()
    for node in spec.nodes:
        setting = json.dumps([node.model, node.train["normalize"]], sort_keys=True)
        if setting in checked:
            continue
        checked.add(setting)
        model = create_model(n_outputs=len(node.groups), normalize=node.train["normalize"], **node.model)
        why = trunk_mismatch(model, flat)
        if why:
            raise CnnTreeError(f"{where}: network {node.id} ({node.model['name']}) cannot start from it: {why}")



