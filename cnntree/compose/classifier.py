"""One scikit-learn estimator for every kind of spec: tree, single network, voting ensemble.

``fit`` trains each network on its own balanced data (``data.nodedata``); ``predict_proba``
combines the networks' outputs with the spec's router (``routing``) or vote (``voting``). Saving,
loading and exporting live in ``storage``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError

from ..data.augment import TTA_VIEWS, tta_views
from ..data.balance import make_balancer
from ..data.nodedata import node_dataset, node_targets
from ..errors import CnnTreeError
from ..files import write_text_atomically
from ..nets.parallel import NetworkJob, make_runner
from ..nets.runtime import CHUNK, RUNTIMES, Columns, KerasRuntime, one_pass_columns
from ..spec import Spec
from ..spec.schema import load_json
from .calibration import make_calibration, training_priors
from .inputs import as_faces, check_faces
from .routing import ROUTERS
from .voting import VOTES

FLAT_HEAD = "_flat"  # the flat head's key among a shared trunk's heads (its layers' name prefix)


class NotFitted(NotFittedError, CnnTreeError):
    """Predicting before ``fit``: scikit-learn's NotFittedError, and one line on the command line."""


def _resumable(stamp: dict) -> dict:
    """What a work folder's training must share with the one resuming it: the stamp less the number
    of epochs (given or the spec's own, at any level) and the spec's description."""
    def strip(value, key=None):
        if isinstance(value, dict):
            return {k: strip(v, k) for k, v in value.items()
                    if not (k == "description" and key is None) and not (k == "epochs" and key == "train")}
        return [strip(v, key) for v in value] if isinstance(value, list) else value
    return {**stamp, "epochs": None, "spec": strip(stamp["spec"])}


def _run(network, mode: str, images: np.ndarray) -> np.ndarray:
    """A network's probabilities for ``images``, averaged over the test-time views of ``mode``."""
    if len(images) == 0:
        return np.zeros((0, network.outputs))
    step = max(1, CHUNK // TTA_VIEWS[mode])  # faces whose views make one call (the mirror's frame: one call)
    parts = []
    for start in range(0, len(images), step):
        views = np.concatenate(tta_views(images[start:start + step], mode)).astype(np.float32)[..., None]
        out = np.asarray(network(views), np.float64)
        parts.append(out.reshape(TTA_VIEWS[mode], -1, out.shape[-1]).mean(axis=0))
    return np.concatenate(parts)


class CnnTreeClassifier(ClassifierMixin, BaseEstimator):
    """A classifier made of the spec's networks.

    Parameters are stored as given: ``spec`` (a :class:`Spec`, its overrides such as epochs or a
    smoke-run budget applied with :func:`cnntree.spec.with_overrides`), ``work_dir`` (per-network
    checkpoints, so an interrupted ``fit`` resumes there), ``jobs`` (networks trained at once in
    local processes), ``ray`` (a Ray cluster address, or ``"local"``, to train them as Ray tasks)
    and ``printer`` (where progress lines go). Fitted state ends in ``_``.
    """

    def __init__(self, spec: Spec, work_dir=None, jobs: int = 1, ray: str | None = None, printer=print):
        self.spec = spec
        self.work_dir = work_dir
        self.jobs = jobs
        self.ray = ray
        self.printer = printer

    # ------------------------------------------------------------------ fitting

    def fit(self, images: np.ndarray, labels: np.ndarray, validation: tuple[np.ndarray, np.ndarray],
            network_run=None, resolve_model=None) -> CnnTreeClassifier:
        """Train every network. ``labels`` index ``spec.classes``; ``validation`` is (images, labels).

        ``network_run(node)`` may return a picklable context manager around one network's training
        that yields extra Keras callbacks (the MLflow child run); it is entered where the network
        trains, which with ``jobs`` or ``ray`` is another process. ``resolve_model(reference)`` turns
        an ``init.from`` that names an MLflow run into a folder (``tracking.runs.model_dir_of``).
        """
        from .finetune import finetune  # Keras: imported when training, not when the CLI starts
        from .flatstart import flat_start

        images, labels = check_faces(images, labels, len(self.spec.classes), "images")
        validation = check_faces(*validation, len(self.spec.classes), "validation")
        work = Path(self.work_dir or tempfile.mkdtemp(prefix="cnntree-")).resolve()
        self._claim(work, labels)
        self.networks_, self.val_accuracy_, self.histories_ = {}, {}, {}
        self.priors_, self.finetune_ = {}, None
        self.images_seen_ = 0  # training faces times epochs, over every network: the budget actually spent
        started = time.perf_counter()
        flat = flat_start(self, images, labels, validation, work, network_run, resolve_model)
        flat_head = None
        if self.spec.trunk["shared"]:
            self.networks_, flat_head = self._shared_networks(flat)
        else:
            self._train_nodes(images, labels, validation, work, network_run, flat)
        if self.spec.finetune["epochs"]:
            self.finetune_ = finetune(self, images, labels, validation, network_run, self.printer, flat_head)
            self.images_seen_ += self.finetune_["images_seen"]
            self.priors_ = {}  # trained jointly on the natural class mix: no resampling prior to undo
        classes = list(self.spec.classes)
        for node in self.spec.nodes:
            index, targets = node_targets(node, validation[1], classes, np.arange(len(validation[1])))
            self.val_accuracy_[node.id] = float((self._network_output(node, validation[0][index]).argmax(1)
                                                 == targets).mean())
        self.calibrate(*validation)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _train_nodes(self, images, labels, validation, work, network_run, flat) -> None:
        """Each network on its own balanced data, in the runner's processes or tasks."""
        jobs = []
        for i, node in enumerate(self.spec.nodes, start=1):
            init = None if flat is None else {"file": str(flat.file), "groups": flat.groups_of(node.groups)}
            job, self.priors_[node.id] = self._network_job(node, f"{node.id} {i}/{len(self.spec.nodes)}", images,
                                                           labels, validation, work / "nodes" / node.id, network_run,
                                                           init)
            jobs.append(job)
        for position, model, state in make_runner(self.jobs, self.ray).run(jobs, self.printer):
            node = self.spec.nodes[position]
            self.networks_[node.id] = KerasRuntime(model)
            self.histories_[node.id] = state["history"]
            self.images_seen_ += len(jobs[position].train[1]) * len(state["history"].get("loss", []))
        self.networks_ = {node.id: self.networks_[node.id] for node in self.spec.nodes}  # spec order

    def _shared_networks(self, flat) -> tuple[dict, object]:
        """The nodes as heads or branches on one trunk (warm-started from ``flat`` when given), as
        ``Columns`` of one network that runs the trunk once per face, and the flat head on that
        trunk when the fine-tuning loss weighs one (else None)."""
        import keras

        from ..nets.heads import head_outputs, one_pass, shared_networks
        from ..nets.warmstart import warm_start

        root = self.spec.root
        keras.utils.set_random_seed(root.train["seed"])
        by_class = self.spec.trunk["heads"] == "classes"
        heads = head_outputs(self.spec)
        if self.spec.finetune["loss"]["flat"]:
            heads[FLAT_HEAD] = len(self.spec.classes)  # not a valid node id: never a node's
        networks = shared_networks(root.model, root.train["normalize"], heads, self.spec.trunk["branch_at"])
        if flat is not None:
            model = keras.saving.load_model(flat.file, safe_mode=True, compile=False)
            for node in self.spec.nodes:  # a class-read head starts as the flat outputs of its classes
                groups = [[c] for group in node.groups for c in group] if by_class else node.groups
                warm_start(networks[node.id], model, flat.groups_of(groups))
            if FLAT_HEAD in networks:
                warm_start(networks[FLAT_HEAD], model, flat.groups_of([[c] for c in self.spec.classes]))
        branch = self.spec.trunk["branch_at"]
        self.printer(f"[trunk] {len(self.spec.nodes)} {'heads' if branch is None else 'branches'} on one "
                     f"{root.model['name']} trunk" + ("" if branch is None else f" (branching at {branch})")
                     + (" and a flat head" if FLAT_HEAD in networks else "")
                     + (", warm start from the flat network" if flat is not None else ""))
        nodes = [networks[n.id] for n in self.spec.nodes]
        columns = one_pass_columns(KerasRuntime(one_pass(nodes)), [len(n.groups) for n in self.spec.nodes], nodes)
        return dict(zip((n.id for n in self.spec.nodes), columns)), networks.get(FLAT_HEAD)

    def _network_job(self, node, label, images, labels, validation, folder, network_run, init=None):
        """One network's training job on its own balanced data (``data.nodedata``) and its training
        priors (what the resampling did, undone at prediction)."""
        classes = list(self.spec.classes)
        data = node_dataset(node, labels, classes, np.arange(len(labels)))
        index, targets = data.index, data.targets
        cap = node.train["max_samples"]
        if cap and len(index) > cap:
            index, targets = index[:cap], targets[:cap]  # shuffled
        val_index, val_targets = node_targets(node, validation[1], classes, np.arange(len(validation[1])))
        used = np.bincount(targets, minlength=len(node.groups)).tolist()
        resampled = (f"{make_balancer(node.balance).rule}: {list(data.before)} -> {list(data.after)}"
                     + (f", the first {cap} kept: {used}" if list(data.after) != used else ""))
        self.printer(f"[{label}] {' | '.join('+'.join(g) for g in node.groups)}: {len(index)} training faces "
                     f"({resampled}), {len(val_index)} validation" + (", warm start from the flat network" if init else ""))
        settings = {"model": node.model, "augment": node.augment, "train": node.train, "init": init}
        job = NetworkJob(label, settings, len(node.groups), (images[index], targets),
                         (validation[0][val_index], val_targets), folder, data.class_weight,
                         network_run(node) if network_run else None)
        return job, training_priors(data.before, data.after, data.class_weight)

    def calibrate(self, images: np.ndarray, labels: np.ndarray, method: str | None = None) -> dict:
        """Fit every network's calibration on labelled faces of the natural class mix (the
        validation split): the spec's ``balance.calibrate``, or ``method`` for all. Returns each
        network's fitted state."""
        self._check_fitted()
        images, labels = check_faces(images, labels, len(self.spec.classes), "calibration faces")
        classes = list(self.spec.classes)
        self.calibrations_ = {}
        for node in self.spec.nodes:
            index, targets = node_targets(node, labels, classes, np.arange(len(labels)))
            calibration = make_calibration(method or node.balance["calibrate"], self.priors_.get(node.id))
            if len(index):
                calibration.fit(self._raw_output(node, images[index]), targets)
            self.calibrations_[node.id] = calibration
        return {node_id: c.record() for node_id, c in self.calibrations_.items()}

    def _claim(self, work: Path, labels: np.ndarray) -> None:
        """Resume only the same training: a work folder remembers the spec, settings and data size.
        Only the number of epochs may change (``--epochs N`` or the spec's own ``train.epochs``), and
        the spec's description, so a finished or interrupted training continues to a longer
        schedule: each network goes on from its last epoch, under the schedule computed for N epochs."""
        given = self.spec.overrides
        stamp = {"spec": self.spec.raw, "epochs": given.get("epochs"), "quick": given.get("quick", False),
                 "counts": np.bincount(labels, minlength=len(self.spec.classes)).tolist()}
        changed = {k: v for k, v in given.items() if k in ("seed", "max_samples", "init_from")}  # what changes the result
        if changed:
            stamp["overrides"] = changed
        file = work / "training.json"
        if file.exists():
            before = load_json(file, "training record")
            if not isinstance(before, dict) or not {"spec", "epochs", "quick", "counts"} <= set(before) \
                    or not isinstance(before["spec"], dict):
                raise CnnTreeError(f"{file}: damaged training record; train without --resume to start afresh")
            if _resumable(before) != _resumable(stamp):
                raise CnnTreeError(f"{work}: holds checkpoints of another training (other spec, settings or data); "
                                   "use another work folder or delete this one")
            if before["epochs"] != stamp["epochs"]:
                was, now = (f"{n} epochs" if n else "the spec's epochs" for n in (before["epochs"], stamp["epochs"]))
                self.printer(f"[work] continuing the checkpoints under {now} (they were trained under {was})")
        work.mkdir(parents=True, exist_ok=True)
        write_text_atomically(file, json.dumps(stamp))

    # ------------------------------------------------------------------ predicting

    def _raw_output(self, node, images: np.ndarray) -> np.ndarray:
        """The network's own probabilities (averaged over the spec's test-time views)."""
        return _run(self.networks_[node.id], node.augment["test_time"], images)

    def _raw_outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every network's own probabilities; the nodes of a one-pass tree from one run of it."""
        runs, out = {}, {}
        for node in self.spec.nodes:
            network, mode = self.networks_[node.id], node.augment["test_time"]
            if not isinstance(network, Columns):
                out[node.id] = _run(network, mode, images)
                continue
            key = (id(network.network), mode)
            if key not in runs:
                runs[key] = _run(network.network, mode, images)
            out[node.id] = runs[key][:, network.start:network.stop]
        return out

    def calibration(self, node):
        """The network's fitted calibration; one never fitted (a model from before calibration was
        fitted, a transferred network) is the spec's strategy with its fit-free part only."""
        fitted = getattr(self, "calibrations_", {})
        return fitted.get(node.id) or make_calibration(node.balance["calibrate"], self.priors_.get(node.id))

    def _network_output(self, node, images: np.ndarray) -> np.ndarray:
        return self.calibration(node).apply(self._raw_output(node, images))

    def network_outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Each network's own probabilities over its groups (for diagnostics and combining)."""
        self._check_fitted()
        raw = self._raw_outputs(as_faces(images))
        return {node.id: self.calibration(node).apply(raw[node.id]) for node in self.spec.nodes}

    def modes(self) -> tuple[str, ...]:
        """The combining modes this kind of spec has (routing or voting)."""
        return tuple(VOTES) if self.spec.kind == "voting" else tuple(ROUTERS)

    def default_mode(self) -> str:
        """Soft routing for trees and single networks; the spec's vote for ensembles."""
        return self.spec.voting if self.spec.kind == "voting" else "soft"

    def combiner(self, mode: str | None = None):
        """The router or vote for ``mode``; a one-line error for a mode of another kind."""
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
        """The class of each face, from ``classes_`` (scikit-learn's ``predict``); the index into
        ``classes_`` is ``predict_proba(images).argmax(axis=1)``."""
        return self.classes_[self.predict_proba(images, mode).argmax(axis=1)]

    def predict_node(self, images: np.ndarray, coverage: float = 0.9, hierarchy=None) -> np.ndarray:
        """Hierarchical answers (``compose.climbing``): per face, the name of the most specific
        node of the hierarchy that is sure enough, so that the answers hold the true class for at
        least ``coverage`` of faces (the threshold calibrated by ``cnntree calibrate --coverage``).
        ``hierarchy``: None (a tree's own, or the one stored with the model), a tree spec, or
        ``"abstain"`` (a class, or any of them)."""
        from ..compose import answers

        found = answers.hierarchy_for(self, hierarchy)
        return np.array([a.label for a in answers.answer(self, self.predict_proba(images), found, coverage)])

    def score(self, images: np.ndarray, labels: np.ndarray, mode: str | None = None) -> float:
        """Accuracy on ``images`` (scikit-learn's ``score``); ``labels`` are class names or indices."""
        labels = np.asarray(labels)
        truth = labels if labels.dtype.kind not in "iu" else self.classes_[labels]
        return float((self.predict(images, mode) == truth).mean())

    @property
    def classes_(self) -> np.ndarray:
        """The class names in output order, once fitted (scikit-learn's ``classes_``)."""
        self._check_fitted()
        return np.array(self.spec.classes)

    @property
    def runtime(self) -> str:
        """The runtime its networks run on: keras, onnx or tflite."""
        self._check_fitted()
        return next(iter(self.networks_.values())).name

    def keras_models(self) -> dict:
        """The Keras model of every network (saving, exporting and transfer need them)."""
        self._check_fitted()
        if any(getattr(n, "model", None) is None for n in self.networks_.values()):
            raise CnnTreeError(f"this classifier runs exported {self.runtime} networks; "
                               "save, export and retrain from the Keras model directory")
        return {node_id: network.model for node_id, network in self.networks_.items()}

    @classmethod
    def from_networks(cls, spec: Spec, networks: dict, val_accuracy=None, priors=None, histories=None,
                      calibrations=None):
        """A fitted classifier from trained networks (runtimes or Keras models) by node id: what
        loading a model directory and transferring to new data both build. ``calibrations`` are
        fitted calibrations by node id (``compose.calibration``)."""
        clf = cls(spec)
        clf.networks_ = {node.id: networks[node.id] if isinstance(networks[node.id], (Columns, *RUNTIMES.values()))
                         else KerasRuntime(networks[node.id]) for node in spec.nodes}
        clf.val_accuracy_, clf.priors_, clf.histories_ = dict(val_accuracy or {}), dict(priors or {}), dict(histories or {})
        clf.calibrations_ = dict(calibrations or {})
        return clf

    def _check_fitted(self):
        if not hasattr(self, "networks_"):
            raise NotFitted("this classifier is not trained yet: call fit() or load a model directory")
