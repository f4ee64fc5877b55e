"""One scikit-learn-style classifier for every kind of spec: tree, single network, voting ensemble.

``fit`` trains each network on its own balanced data (``nodedata``), ``predict_proba`` combines
the networks' outputs with the spec's router (``tree``) or vote (``ensemble``), and the whole
classifier saves to (and loads from) one directory, written atomically.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .augment import tta_views
from .calibrate import make_calibration, training_priors
from .ensemble import VOTES
from .errors import CnnTreeError
from .files import check_output_folder, new_folder_beside, recover_folder, replace_folder, write_text_atomically
from .nodedata import node_dataset, node_targets
from .parallel import NetworkJob, make_runner
from .runtime import EXPORTS, KerasRuntime, export_network, load_network
from .schema import Ident, ListOf, Nullable, Num, Obj, Passthrough, Text, load_json
from .spec import Spec, parse_spec
from .tree import ROUTERS

FORMAT_VERSION = 1
MODEL_KINDS = ("model", "export")  # folders ``save`` and ``export`` may replace
_probability = Num(lo=0, hi=1, lo_open=True)
META = Obj({  # what load trusts in meta.json; the rest (histories, timings) is only reported
    "networks": ListOf(Obj({"id": Ident(), "groups": ListOf(ListOf(Text(), min_len=1), min_len=1),
                            "file": Text(max_len=300), "val_accuracy": Nullable(Num(lo=0, hi=1)),
                            "priors": Nullable(Obj({"train": ListOf(_probability, min_len=1),
                                                    "true": ListOf(_probability, min_len=1)}))}),
                       min_len=1, max_len=256),
    **{key: Passthrough() for key in ("format", "name", "kind", "classes", "default_mode", "exported", "histories",
                                       "fit_seconds")},
})


def inside(directory: Path, relative: str, where: str) -> Path:
    """``directory / relative``, refused when it leads outside ``directory`` (absolute, ``..``, symlinks)."""
    path = directory / relative
    if Path(relative).is_absolute() or not path.resolve().is_relative_to(directory.resolve()):
        raise CnnTreeError(f"{where}: file {relative!r} lies outside the model directory")
    return path
QUICK_EPOCHS = 1
QUICK_SAMPLES = 512
QUICK_WIDTH = 0.25


class CnnTreeClassifier:
    """A classifier made of the spec's networks.

    Parameters are stored as given: ``spec`` (a :class:`Spec`), ``epochs`` (overrides every
    network's epochs), ``quick`` (a smoke run: 1 epoch, at most 512 training faces per network,
    filter counts x0.25 for models with a ``width``), ``work_dir`` (per-network checkpoints, so an interrupted ``fit`` resumes there),
    ``jobs`` (networks trained at once in local processes) and ``ray`` (a Ray cluster address, or
    ``"local"``, to train them as Ray tasks instead).
    """

    def __init__(self, spec: Spec, epochs: int | None = None, quick: bool = False, work_dir=None, jobs: int = 1,
                 ray: str | None = None, printer=print):
        self.spec = spec
        self.epochs = epochs
        self.quick = quick
        self.work_dir = work_dir
        self.jobs = jobs
        self.ray = ray
        self.printer = printer

    # ------------------------------------------------------------------ fitting

    def _settings(self, node):
        train = dict(node.train)
        if self.epochs is not None:
            train["epochs"] = self.epochs
        model = dict(node.model)
        if self.quick:
            train["epochs"] = min(train["epochs"], QUICK_EPOCHS)
            if "width" in model:
                model["width"] *= QUICK_WIDTH
        return {"model": model, "augment": node.augment, "train": train}

    def fit(self, images: np.ndarray, labels: np.ndarray, validation: tuple[np.ndarray, np.ndarray],
            network_run=None) -> "CnnTreeClassifier":
        """Train every network. ``labels`` index ``spec.classes``; ``validation`` is (images, labels).

        ``network_run(node)`` may return a picklable context manager around one network's training
        that yields extra Keras callbacks (the MLflow child run); it is entered where the network
        trains, which with ``jobs`` or ``ray`` is another process.
        """
        work = Path(self.work_dir or tempfile.mkdtemp(prefix="cnntree-")).resolve()
        self._claim(work, labels)
        classes = list(self.spec.classes)
        self.networks_, self.val_accuracy_, self.histories_ = {}, {}, {}
        self.priors_ = {}
        self.images_seen_ = 0  # training faces times epochs, over every network: the budget actually spent
        started = time.perf_counter()
        jobs = []
        for i, node in enumerate(self.spec.nodes, start=1):
            label = f"{node.id} {i}/{len(self.spec.nodes)}"
            data = node_dataset(node, labels, classes, np.arange(len(labels)))
            index, targets = data.index, data.targets
            if self.quick and len(index) > QUICK_SAMPLES:
                index, targets = index[:QUICK_SAMPLES], targets[:QUICK_SAMPLES]  # already shuffled
            val_index, val_targets = node_targets(node, validation[1], classes, np.arange(len(validation[1])))
            self.printer(f"[{label}] {' | '.join('+'.join(g) for g in node.groups)}: {len(index)} training faces "
                         f"(balanced {node.balance['strategy']}: {list(data.before)} -> {list(data.after)}), "
                         f"{len(val_index)} validation")
            self.priors_[node.id] = training_priors(data.before, data.after, data.class_weight)
            jobs.append(NetworkJob(label, self._settings(node), len(node.groups), (images[index], targets),
                                   (validation[0][val_index], val_targets), work / "nodes" / node.id,
                                   data.class_weight, network_run(node) if network_run else None))
        for position, model, state in make_runner(self.jobs, self.ray).run(jobs, self.printer):
            node = self.spec.nodes[position]
            self.networks_[node.id] = KerasRuntime(model)
            val_images, val_targets = jobs[position].validation
            self.val_accuracy_[node.id] = float((self._network_output(node, val_images).argmax(1) == val_targets).mean())
            self.histories_[node.id] = state["history"]
            self.images_seen_ += len(jobs[position].train[1]) * len(state["history"].get("loss", []))
        self.networks_ = {node.id: self.networks_[node.id] for node in self.spec.nodes}  # spec order
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _claim(self, work: Path, labels: np.ndarray) -> None:
        """Resume only the same training: a work folder remembers the spec, settings and data size."""
        stamp = {"spec": self.spec.raw, "epochs": self.epochs, "quick": self.quick,
                 "counts": np.bincount(labels, minlength=len(self.spec.classes)).tolist()}
        file = work / "training.json"
        if file.exists() and json.loads(file.read_text()) != stamp:
            raise CnnTreeError(f"{work}: holds checkpoints of another training (other spec, settings or data); "
                               "use another work folder or delete this one")
        work.mkdir(parents=True, exist_ok=True)
        write_text_atomically(file, json.dumps(stamp))

    # ------------------------------------------------------------------ predicting

    def _network_output(self, node, images: np.ndarray) -> np.ndarray:
        if len(images) == 0:
            return np.zeros((0, len(node.groups)))
        network = self.networks_[node.id]
        views = tta_views(images, node.augment["test_time"])
        total = sum(network(view.astype(np.float32)[..., None]) for view in views)
        calibration = make_calibration(node.balance["calibrate"], self.priors_.get(node.id))
        return calibration.apply(np.asarray(total / len(views), np.float64))

    def network_outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Each network's own probabilities over its groups (for diagnostics and combining)."""
        self._check_fitted()
        return {node.id: self._network_output(node, images) for node in self.spec.nodes}

    def modes(self) -> tuple[str, ...]:
        return tuple(VOTES) if self.spec.kind == "voting" else tuple(ROUTERS)

    def default_mode(self) -> str:
        return self.spec.voting if self.spec.kind == "voting" else "soft"

    def combiner(self, mode: str | None = None):
        mode = mode or self.default_mode()
        if mode not in self.modes():
            raise CnnTreeError(f"mode \"{mode}\" does not apply to a {self.spec.kind}; use one of {', '.join(self.modes())}")
        if self.spec.kind == "voting":
            return VOTES[mode]([n.id for n in self.spec.nodes], self.val_accuracy_)
        return ROUTERS[mode](self.spec)

    def predict_proba(self, images: np.ndarray, mode: str | None = None) -> np.ndarray:
        """Class probabilities in ``spec.classes`` order (soft routing / the spec's vote by default)."""
        return self.combiner(mode).combine(self.network_outputs(images))

    def predict(self, images: np.ndarray, mode: str | None = None) -> np.ndarray:
        return self.predict_proba(images, mode).argmax(axis=1)

    def score(self, images: np.ndarray, labels: np.ndarray, mode: str | None = None) -> float:
        return float((self.predict(images, mode) == labels).mean())

    def _check_fitted(self):
        if not hasattr(self, "networks_"):
            raise CnnTreeError("this classifier is not trained yet: call fit() or load a model directory")

    # ------------------------------------------------------------------ saving

    def keras_models(self) -> dict:
        """The Keras model of every network (saving, exporting and transfer need them)."""
        self._check_fitted()
        if not all(isinstance(n, KerasRuntime) for n in self.networks_.values()):
            raise CnnTreeError(f"this classifier runs exported {self.runtime} networks; "
                               "save, export and retrain from the Keras model directory")
        return {node_id: network.model for node_id, network in self.networks_.items()}

    def save(self, directory) -> Path:
        """Write spec, networks (native ``.keras``) and metadata to ``directory`` atomically."""
        models = self.keras_models()
        return self._write(directory, ".keras", lambda node_id, path: models[node_id].save(path))

    def export(self, directory, fmt: str) -> Path:
        """Write the networks in ``fmt`` (onnx, tflite, savedmodel) with the routing metadata, atomically.

        The directory loads like a saved one (``load``) and runs on that format's runtime.
        """
        if fmt not in EXPORTS:
            raise CnnTreeError(f"--format: unknown export format \"{fmt}\"; use one of {', '.join(EXPORTS)}")
        models = self.keras_models()
        return self._write(directory, EXPORTS[fmt][1],
                           lambda node_id, path: export_network(models[node_id], fmt, path), fmt)

    def _write(self, directory, suffix: str, write_network, exported: str | None = None) -> Path:
        """Fill a marked temporary folder beside ``directory``, then exchange it into place atomically.

        An existing ``directory`` is replaced only when cnntree wrote it (its marker), never ``.``.
        """
        directory = Path(directory).absolute()
        check_output_folder(directory, MODEL_KINDS)
        recover_folder(directory)
        with new_folder_beside(directory, "export" if exported else "model") as tmp:
            (tmp / "networks").mkdir()
            for node in self.spec.nodes:
                write_network(node.id, tmp / "networks" / f"{node.id}{suffix}")
            (tmp / "spec.json").write_text(json.dumps(self.spec.raw, indent=2))
            meta = {"format": FORMAT_VERSION, "name": self.spec.name, "kind": self.spec.kind,
                    "classes": list(self.spec.classes), "default_mode": self.default_mode(), "exported": exported,
                    "networks": [{"id": n.id, "groups": [list(g) for g in n.groups],
                                  "file": f"networks/{n.id}{suffix}", "val_accuracy": self.val_accuracy_.get(n.id),
                                  "priors": self.priors_.get(n.id)}
                                 for n in self.spec.nodes],
                    "histories": self.histories_, "fit_seconds": getattr(self, "fit_seconds_", None)}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
            replace_folder(tmp, directory)
        return directory

    @classmethod
    def load(cls, directory) -> "CnnTreeClassifier":
        """Read a saved or exported classifier; each network runs on the runtime its file suffix names.

        Keras files are loaded in ``safe_mode`` (no code is unpickled); ``meta.json`` is validated
        (ids, groups, priors) and may only name network files inside the directory.
        """
        directory = Path(directory)
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
        spec = parse_spec(raw, source=str(directory / "spec.json"), base_dir=directory)
        nodes = {n.id: n for n in spec.nodes}
        if sorted(e["id"] for e in entries) != sorted(nodes):
            raise CnnTreeError(f"{directory / 'meta.json'}: lists networks {sorted(e['id'] for e in entries)}, the "
                               f"spec has {sorted(nodes)}")
        clf = cls(spec)
        clf.networks_, clf.val_accuracy_, clf.priors_ = {}, {}, {}
        clf.histories_ = meta.get("histories") or {}
        for entry in entries:
            node = nodes[entry["id"]]
            where = f"{directory / 'meta.json'}: networks[{entry['id']}]"
            if [list(g) for g in node.groups] != entry["groups"]:
                raise CnnTreeError(f"{where}: groups {entry['groups']} differ from the spec's")
            network = load_network(inside(directory, entry["file"], where))
            if network.outputs != len(node.groups):
                raise CnnTreeError(f"{directory / entry['file']}: a network with {network.outputs} outputs where "
                                   f"{entry['id']} has {len(node.groups)} groups (network files swapped?)")
            clf.networks_[node.id] = network
            if entry["priors"] is not None:
                for key in ("train", "true"):
                    if len(entry["priors"][key]) != len(node.groups):
                        raise CnnTreeError(f"{where}.priors.{key}: {len(entry['priors'][key])} values for "
                                           f"{len(node.groups)} groups")
                clf.priors_[node.id] = entry["priors"]
            if entry["val_accuracy"] is not None:
                clf.val_accuracy_[node.id] = entry["val_accuracy"]
        return clf

    @property
    def runtime(self) -> str:
        self._check_fitted()
        return next(iter(self.networks_.values())).name
