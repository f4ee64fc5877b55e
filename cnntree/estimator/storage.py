"""A classifier on disk: saved (native ``.keras`` networks), exported (ONNX, LiteRT, SavedModel)
and loaded back, one directory each, written atomically and validated when read.

A directory holds ``spec.json``, ``meta.json`` (the networks, their groups, calibration priors and
fitted calibrations, the overrides it was trained with) and ``networks/<id><suffix>``, or for a
shared trunk one ``networks/tree<suffix>`` that computes every node in one pass (each node's
``columns`` of its output in ``meta.json``); the file suffix names the runtime that runs a network.
Loading never runs code from the directory: Keras files are read in ``safe_mode``, and
``meta.json`` may only name files inside the directory.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..compose import answers as climbing
from ..compose.reading import read_model
from ..errors import CnnTreeError
from ..files import MARKER, check_output_folder, new_folder_beside, recover_folder, replace_folder
from ..nets.runtime import EXPORTS, Columns, export_network, save_network
from ..spec import parse_spec, with_overrides
from ..spec.schema import Ident, load_json
from .classifier import CnnTreeClassifier

FORMAT_VERSION = 1
MODEL_KINDS = ("model", "export")  # the marked folders ``save`` and ``export`` may replace
ONE_PASS = "tree"  # the file stem of a shared trunk's one network (node ids name the others)
MACHINE_OVERRIDES = ("data", "init_from")  # paths of the training machine: a shipped model reads the bundled sample


def check_model_folder(directory, option: str = "--out", reads=(), in_place: bool = False) -> Path:
    """Fail before any work unless a model may be written to ``directory``: new, or a model or export
    folder cnntree wrote, never a shipped model's folder (``cnntree/pretrained``), and apart from
    every model folder the command ``reads`` (replacing a folder that holds one deletes it; writing
    inside one copies a half-written folder into itself). ``in_place``: the one model read may be
    rewritten where it is (``calibrate`` without ``--out``)."""
    from ..pretrained import HERE, resolve

    target = Path(directory).absolute().resolve()
    if target.is_relative_to(HERE):
        raise CnnTreeError(f"{option} {directory}: a shipped model is read-only; give --out another folder")
    for source in reads:
        read = resolve(source).absolute().resolve()
        if read == target and in_place:
            continue
        if read == target:
            raise CnnTreeError(f"{option} {directory}: is the model {source} that this command reads; "
                               "give a new folder")
        if read.is_relative_to(target):
            raise CnnTreeError(f"{option} {directory}: holds the model {source} that this command reads, which "
                               "writing there would delete; give a folder beside it")
        if target.is_relative_to(read):
            raise CnnTreeError(f"{option} {directory}: lies inside the model {source} that this command reads; "
                               "give a folder outside it")
    return check_output_folder(directory, MODEL_KINDS, option)


def save(clf: CnnTreeClassifier, directory, shipping: bool = False) -> Path:
    """Write spec, networks (native ``.keras``) and metadata to ``directory`` atomically."""
    return _write(clf, directory, ".keras", save_network, shipping=shipping)


def ship(clf: CnnTreeClassifier, name: str) -> Path:
    """Save ``clf`` as the shipped model ``name`` (``cnntree/pretrained/<name>``): the one writer of
    shipped folders, which every command refuses (``scripts/ship_model.py`` calls it)."""
    import copy

    from ..pretrained import HERE

    spec = clf.spec_
    portable = {key: value for key, value in spec.overrides.items() if key not in MACHINE_OVERRIDES}
    shipped = copy.copy(clf)
    shipped.spec = shipped.spec_ = parse_spec(spec.raw, source=spec.source, base_dir=spec.base_dir, overrides=portable)
    return save(shipped, HERE / Ident().parse(name, "--name"), shipping=True)


def export(clf: CnnTreeClassifier, directory, fmt: str) -> Path:
    """Write the networks in ``fmt`` (onnx, tflite, savedmodel) with the routing metadata, atomically.

    The directory loads like a saved one (:func:`load`) and runs on that format's runtime.
    """
    if fmt not in EXPORTS:
        raise CnnTreeError(f"--format: unknown export format \"{fmt}\"; use one of {', '.join(EXPORTS)}")
    return _write(clf, directory, EXPORTS[fmt][1], lambda model, path: export_network(model, fmt, path), fmt)


def _network_files(clf: CnnTreeClassifier) -> tuple[dict, dict]:
    """The Keras models to write by file stem (a node's id, or ``tree`` for the one network of a
    one-pass shared trunk), and each node's file stem and columns (None: the whole output)."""
    clf.keras_models()  # Keras networks only: one line for an exported classifier
    models, entries = {}, {}
    for node in clf.spec_.nodes:
        network = clf.networks_[node.id]
        if isinstance(network, Columns):
            models[ONE_PASS] = network.network.model
            entries[node.id] = (ONE_PASS, [network.start, network.stop])
        else:
            models[node.id] = network.model
            entries[node.id] = (node.id, None)
    return models, entries


def _write(clf, directory, suffix: str, write_network, exported: str | None = None, shipping: bool = False) -> Path:
    """Fill a marked temporary folder beside ``directory``, then exchange it into place atomically.

    An existing ``directory`` is replaced only when cnntree wrote it (its marker), never ``.``, and
    a shipped model's folder only when ``shipping``.
    """
    directory = Path(directory).absolute()
    if shipping:
        check_output_folder(directory, MODEL_KINDS)
    else:
        check_model_folder(directory)
    recover_folder(directory)
    spec = with_overrides(clf.spec_, test_time=clf.test_time) if clf.test_time else clf.spec_  # the views it answers with
    models, entries = _network_files(clf)
    with new_folder_beside(directory, "export" if exported else "model") as tmp:
        (tmp / "networks").mkdir()
        for stem, model in models.items():
            write_network(model, tmp / "networks" / f"{stem}{suffix}")
        (tmp / "spec.json").write_text(json.dumps(spec.raw, indent=2))
        meta = {"format": FORMAT_VERSION, "name": spec.name, "kind": spec.kind, "classes": list(spec.classes),
                "default_mode": clf.default_mode(), "exported": exported, "overrides": spec.overrides,
                "networks": [{"id": n.id, "groups": [list(g) for g in n.groups],
                              "file": f"networks/{entries[n.id][0]}{suffix}", "columns": entries[n.id][1],
                              "val_accuracy": clf.val_accuracy_.get(n.id), "priors": clf.priors_.get(n.id),
                              "calibration": clf.calibration(n).record()}
                             for n in spec.nodes],
                "histories": clf.histories_, "fit_seconds": getattr(clf, "fit_seconds_", None),
                "finetune": getattr(clf, "finetune_", None)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        if getattr(clf, "climbing_", None):
            (tmp / climbing.FILE).write_text(json.dumps(clf.climbing_, indent=2))
        replace_folder(tmp, directory)
    return directory


def save_calibration(clf: CnnTreeClassifier, source, out) -> Path:
    """A copy of the model folder ``source`` whose ``meta.json`` carries ``clf``'s fitted
    calibrations, exchanged into ``out`` (``source`` itself to refit in place) atomically. The
    network files are copied as they are, so exported folders are recalibrated too."""
    from ..pretrained import resolve

    meta = load_json(resolve(source) / "meta.json", "model metadata")
    for entry in meta["networks"]:
        entry["calibration"] = clf.calibrations_[entry["id"]].record()
    return _copy_with(source, out, {"meta.json": meta})


def save_climbing(record: dict, source, out) -> Path:
    """A copy of the model folder ``source`` with ``record`` (its hierarchies and conformal
    thresholds, ``compose.answers``) beside its networks, exchanged into ``out`` atomically."""
    return _copy_with(source, out, {climbing.FILE: record})


def copy_model(source, out) -> Path:
    """The saved model folder ``source`` copied to ``out`` atomically: a second place for one saved
    classifier without serialising its networks again."""
    return _copy_with(source, out, {})


def _copy_with(source, out, files: dict) -> Path:
    """The model folder ``source`` copied to ``out`` (itself to change it in place) with ``files``
    (name -> JSON) written over, atomically."""
    from ..pretrained import resolve

    source, out = resolve(source).absolute(), Path(out).absolute()
    check_model_folder(out, reads=[source], in_place=True)
    meta = load_json(source / "meta.json", "model metadata")
    with new_folder_beside(out, "export" if meta.get("exported") else "model") as tmp:
        for item in source.iterdir():
            if item.name != MARKER:
                if item.is_dir() and not item.is_symlink():
                    shutil.copytree(item, tmp / item.name, symlinks=True)
                else:
                    shutil.copy2(item, tmp / item.name, follow_symlinks=False)
        for name, value in files.items():
            (tmp / name).write_text(json.dumps(value, indent=2))
        replace_folder(tmp, out)
    return out


def load(directory) -> CnnTreeClassifier:
    """Read a saved or exported classifier (or a shipped one by name: ``"default"``); each network
    runs on the runtime its file suffix names."""
    saved = read_model(directory)
    clf = CnnTreeClassifier.from_networks(saved.spec, saved.networks, saved.val_accuracy, saved.priors,
                                          saved.histories, saved.calibrations)
    clf.climbing_ = saved.climbing
    return clf


def load_checkpoint(work) -> tuple[CnnTreeClassifier, dict]:
    """A classifier from a single network's work folder (an unfinished training too): its last
    checkpoint with the best epoch's weights, and how far it trained."""
    import keras

    from ..nets.train import read_state

    work = Path(work)
    stamp = load_json(work / "training.json", "training record")
    spec = parse_spec(stamp["spec"], source=str(work / "training.json"))
    if spec.kind != "single":
        raise CnnTreeError(f"{work}: a {spec.kind}'s work folder; only a single network's checkpoint loads as a "
                           "classifier (use the finished model folder)")
    folder = work / "nodes" / spec.root.id
    state = read_state(folder)
    model = keras.saving.load_model(folder / "last.keras", safe_mode=True, compile=False)
    if (folder / "best.weights.h5").exists():
        model.load_weights(folder / "best.weights.h5")
    clf = CnnTreeClassifier.from_networks(spec, {spec.root.id: model},
                                          {spec.root.id: max(state["history"].get("val_accuracy", [0]))},
                                          histories={spec.root.id: state["history"]})
    facts = {"epochs_trained": state["epoch"], "best_epoch": state["best_epoch"] + 1,
             "epochs_planned": stamp["epochs"] or spec.root.train["epochs"], "finished": False}
    return clf, facts
