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
from .files import write_text_atomically
from .nodedata import node_dataset, node_targets
from .parallel import NetworkJob, make_runner
from .runtime import EXPORTS, KerasRuntime, export_network, load_network
from .spec import Spec, parse_spec
from .tree import ROUTERS

FORMAT_VERSION = 1
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
        """Fill a temporary directory beside ``directory``, then rename it into place."""
        directory = Path(directory).resolve()
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.tmp-"))
        try:
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
            old = None
            if directory.exists():
                old = directory.parent / f".{directory.name}.old-{os.getpid()}"
                os.replace(directory, old)
            os.replace(tmp, directory)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return directory

    @classmethod
    def load(cls, directory) -> "CnnTreeClassifier":
        """Read a saved or exported classifier; each network runs on the runtime its file suffix names.

        Keras files are loaded in ``safe_mode`` (no code is unpickled).
        """
        directory = Path(directory)
        meta_file = directory / "meta.json"
        if not directory.is_dir():
            raise CnnTreeError(f"{directory}: no such model directory")
        if not meta_file.exists():
            raise CnnTreeError(f"{directory}: not a cnntree model directory (no meta.json)")
        try:
            meta = json.loads(meta_file.read_text())
            raw = json.loads((directory / "spec.json").read_text())
            entries = [(entry["id"], directory / entry["file"], entry.get("val_accuracy"), entry.get("priors"))
                       for entry in meta["networks"]]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise CnnTreeError(f"{directory}: damaged model directory ({type(error).__name__}: {error})") from None
        spec = parse_spec(raw, source=str(directory / "spec.json"), base_dir=directory)
        clf = cls(spec)
        clf.networks_, clf.val_accuracy_, clf.priors_ = {}, {}, {}
        clf.histories_ = meta.get("histories", {})
        for node_id, path, val_accuracy, priors in entries:
            clf.networks_[node_id] = load_network(path)
            if priors is not None:
                clf.priors_[node_id] = priors
            if val_accuracy is not None:
                clf.val_accuracy_[node_id] = val_accuracy
        if sorted(clf.networks_) != sorted(n.id for n in spec.nodes):
            raise CnnTreeError(f"{meta_file}: lists networks {sorted(clf.networks_)}, the spec has "
                               f"{sorted(n.id for n in spec.nodes)}")
        return clf

    @property
    def runtime(self) -> str:
        self._check_fitted()
        return next(iter(self.networks_.values())).name
