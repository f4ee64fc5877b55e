"""One scikit-learn estimator for every kind of spec: tree, single network, voting ensemble.

``fit`` trains each network on its own balanced data (``data.nodedata``); ``predict_proba``
combines the networks' outputs with the spec's router (``routing``) or vote (``voting``). Saving,
loading and exporting live in ``storage``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError

from ..compose.calibration import make_calibration
from ..compose.inputs import SIDE, as_faces, as_labels, check_faces
from ..compose.routing import ROUTERS
from ..compose.voting import VOTES
from ..data.augment import TTA_VIEWS, tta_views
from ..data.nodedata import node_targets
from ..data.splits import stratified_fraction
from ..errors import CnnTreeError
from ..log import progress
from ..nets.parallel import make_runner
from ..nets.runtime import CHUNK, RUNTIMES, Columns, KerasRuntime
from ..spec import Spec
from ..training.resume import claim


class NotFitted(NotFittedError, CnnTreeError):
    """Predicting before ``fit``: scikit-learn's NotFittedError, and one line on the command line."""


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

    Parameters, stored as given (scikit-learn's way; every one has a default):

    - ``spec``: a :class:`Spec`, the path of a spec file, or None for the shipped default model's
      spec (``cnntree.pretrained``);
    - ``epochs``, ``random_state``: override every network's epochs and seed (None: the spec's);
    - ``mode``: how the networks combine, ``"soft"`` or ``"hard"`` routing, or a vote of an ensemble
      (None: soft routing, or the spec's vote);
    - ``test_time``: the test-time views every network averages over (None: each network's own);
    - ``validation_fraction``: the share of the training faces held out, stratified and drawn by the
      seed, when ``fit`` gets no validation faces;
    - ``work_dir``: per-network checkpoints, so an interrupted ``fit`` resumes there (None: a
      temporary folder, removed when ``fit`` ends);
    - ``jobs``, ``ray``: networks trained at once in local processes, or as tasks of a Ray cluster
      (an address, or ``"local"``);
    - ``verbose``: progress lines at INFO on the ``cnntree`` logger (else at DEBUG).

    Fitted state ends in ``_``; ``spec_`` is the spec as trained (overrides applied).
    """

    def __init__(self, spec=None, epochs=None, random_state=None, mode=None, test_time=None,
                 validation_fraction=0.1, work_dir=None, jobs=1, ray=None, verbose=0):
        self.spec = spec
        self.epochs = epochs
        self.random_state = random_state
        self.mode = mode
        self.test_time = test_time
        self.validation_fraction = validation_fraction
        self.work_dir = work_dir
        self.jobs = jobs
        self.ray = ray
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True  # (n, 48, 48) faces, or (n, 2304) rows of their pixels
        tags.non_deterministic = bool(self.jobs != 1 or self.ray)
        return tags

    # ------------------------------------------------------------------ fitting

    def _resolved_spec(self) -> Spec:
        """The spec to train: ``spec`` as given (an object, a file, or the shipped default's) with
        this estimator's ``epochs`` and ``random_state``."""
        from ..pretrained import default_model
        from ..spec import load_spec, with_overrides

        if isinstance(self.spec, Spec):
            spec = self.spec
        elif self.spec is None:
            spec = load_spec(default_model() / "spec.json")
        elif isinstance(self.spec, (str, Path)):
            spec = load_spec(self.spec)
        else:
            raise CnnTreeError(f"spec: expected a Spec, a spec file or None, got {type(self.spec).__name__}")
        given = {"epochs": self.epochs, "seed": self.random_state}
        given = {k: v for k, v in given.items() if v is not None}
        return with_overrides(spec, **given) if given else spec

    def fit(self, images, labels, validation=None, network_run=None, resolve_model=None) -> CnnTreeClassifier:
        """Train every network. ``images``: (n, 48, 48) grey faces (or n rows of their 2,304 pixels);
        ``labels``: class names of the spec or indices into them; ``validation``: (images, labels),
        or None to hold out ``validation_fraction`` of the training faces.

        ``network_run(node)`` may return a picklable context manager around one network's training
        that yields extra Keras callbacks (the MLflow child run); it is entered where the network
        trains, which with ``jobs`` or ``ray`` is another process. ``resolve_model(reference)`` turns
        an ``init.from`` that names an MLflow run into a folder (``models.model_dir``).
        """
        self.spec_ = spec = self._resolved_spec()
        classes = list(spec.classes)
        images, labels = check_faces(images, labels, classes, "images")
        if validation is None:
            if not (isinstance(self.validation_fraction, float | int) and 0 < self.validation_fraction < 1):
                raise CnnTreeError(f"validation_fraction: expected a share between 0 and 1, got {self.validation_fraction!r}")
            train, held_out = stratified_fraction(labels, np.arange(len(labels)), self.validation_fraction,
                                                  spec.root.train["seed"], "validation_fraction")
            images, labels, validation = images[train], labels[train], (images[held_out], labels[held_out])
        validation = check_faces(*validation, classes, "validation")
        if self.work_dir is None:
            with tempfile.TemporaryDirectory(prefix="cnntree-") as work:
                return self._fit(images, labels, validation, Path(work), network_run, resolve_model)
        return self._fit(images, labels, validation, Path(self.work_dir).resolve(), network_run, resolve_model)

    def _fit(self, images, labels, validation, work: Path, network_run, resolve_model) -> CnnTreeClassifier:
        from ..training.finetune import finetune  # Keras: imported when training, not when the CLI starts
        from ..training.flatstart import flat_start
        from ..training.nodes import train_nodes
        from ..training.trunk import trunk_networks

        spec, say = self.spec_, self._say
        claim(work, spec, labels, say)
        self.n_features_in_ = SIDE * SIDE  # scikit-learn's count of what a row holds: a face's pixels
        self.val_accuracy_, self.histories_, self.priors_, self.finetune_ = {}, {}, {}, None
        started = time.perf_counter()
        runner = make_runner(self.jobs, self.ray)
        flat, self.images_seen_ = flat_start(spec, images, labels, validation, work, runner, say, network_run,
                                             resolve_model)  # images_seen_: training faces x epochs, every network
        flat_head = None
        if spec.trunk["shared"]:
            self.networks_, flat_head = trunk_networks(spec, flat, say)
        else:
            trained = train_nodes(spec, images, labels, validation, work, runner, say, network_run, flat)
            self.networks_, self.histories_, self.priors_ = trained.networks, trained.histories, trained.priors
            self.images_seen_ += trained.images_seen
        if spec.finetune["epochs"]:
            networks = [self.networks_[node.id].model for node in spec.nodes]
            self.finetune_ = finetune(spec, networks, images, labels, validation, network_run, say, flat_head)
            self.images_seen_ += self.finetune_["images_seen"]
            self.priors_ = {}  # trained jointly on the natural class mix: no resampling prior to undo
        outputs = self._node_outputs(*validation)  # the networks run once for the accuracies and the calibration
        for node in spec.nodes:
            raw, targets = outputs[node.id]
            self.val_accuracy_[node.id] = float((self.calibration(node).apply(raw).argmax(1) == targets).mean())
        self._fit_calibrations(outputs)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    @property
    def _say(self):
        return progress(self.verbose)

    def calibrate(self, images: np.ndarray, labels: np.ndarray, method: str | None = None) -> dict:
        """Fit every network's calibration on labelled faces of the natural class mix (the
        validation split): the spec's ``balance.calibrate``, or ``method`` for all. Returns each
        network's fitted state."""
        self._check_fitted()
        images, labels = check_faces(images, labels, list(self.spec_.classes), "calibration faces")
        return self._fit_calibrations(self._node_outputs(images, labels), method)

    def _node_outputs(self, images: np.ndarray, labels: np.ndarray) -> dict[str, tuple]:
        """Per network: its own probabilities (before calibration) on the faces of its classes, and
        their targets among its groups."""
        classes, out = list(self.spec_.classes), {}
        for node in self.spec_.nodes:
            index, targets = node_targets(node, labels, classes, np.arange(len(labels)))
            out[node.id] = (self._raw_output(node, images[index]), targets)
        return out

    def _fit_calibrations(self, outputs: dict[str, tuple], method: str | None = None) -> dict:
        self.calibrations_ = {}
        for node in self.spec_.nodes:
            raw, targets = outputs[node.id]
            calibration = make_calibration(method or node.balance["calibrate"], self.priors_.get(node.id))
            if len(targets):
                calibration.fit(raw, targets)
            self.calibrations_[node.id] = calibration
        return {node_id: c.record() for node_id, c in self.calibrations_.items()}

    # ------------------------------------------------------------------ predicting

    def _raw_output(self, node, images: np.ndarray) -> np.ndarray:
        """The network's own probabilities (averaged over the spec's test-time views)."""
        return _run(self.networks_[node.id], self._views(node), images)

    def _views(self, node) -> str:
        """The test-time views a network averages over: ``test_time``, else its own."""
        return self.test_time or node.augment["test_time"]

    def raw_outputs(self, images) -> dict[str, np.ndarray]:
        """Every network's own probabilities, before its calibration (``calibrated`` applies it); the
        nodes of a one-pass tree from one run of it."""
        self._check_fitted()
        images = as_faces(images)
        runs, out = {}, {}
        for node in self.spec_.nodes:
            network, mode = self.networks_[node.id], self._views(node)
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

    def calibrated(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``raw_outputs`` through each network's calibration: what the classifier combines."""
        return {node.id: self.calibration(node).apply(raw[node.id]) for node in self.spec_.nodes}

    def network_outputs(self, images) -> dict[str, np.ndarray]:
        """Each network's own probabilities over its groups (for diagnostics and combining)."""
        return self.calibrated(self.raw_outputs(images))

    def modes(self) -> tuple[str, ...]:
        """The combining modes this kind of spec has (routing or voting)."""
        return tuple(VOTES) if self.spec_.kind == "voting" else tuple(ROUTERS)

    def default_mode(self) -> str:
        """Soft routing for trees and single networks; the spec's vote for ensembles."""
        return self.spec_.voting if self.spec_.kind == "voting" else "soft"

    def combiner(self, mode: str | None = None):
        """The router or vote for ``mode`` (default: the estimator's ``mode``, else
        ``default_mode()``); a one-line error for a mode of another kind."""
        mode = mode or self.mode or self.default_mode()
        if mode not in self.modes():
            raise CnnTreeError(f"mode \"{mode}\" does not apply to a {self.spec_.kind}; use one of {', '.join(self.modes())}")
        if self.spec_.kind == "voting":
            return VOTES[mode]([n.id for n in self.spec_.nodes], self.val_accuracy_)
        return ROUTERS[mode](self.spec_)

    def predict_proba(self, images) -> np.ndarray:
        """Class probabilities in ``classes_`` order, combined by ``mode``."""
        self._check_fitted()
        return self.combiner().combine(self.network_outputs(images))

    def predict(self, images) -> np.ndarray:
        """The class of each face, from ``classes_`` (scikit-learn's ``predict``); the index into
        ``classes_`` is ``predict_proba(images).argmax(axis=1)``."""
        return self.classes_[self.predict_proba(images).argmax(axis=1)]

    def predict_node(self, images: np.ndarray, coverage: float = 0.9, hierarchy=None) -> np.ndarray:
        """Hierarchical answers (``compose.climbing``): per face, the name of the most specific
        node of the hierarchy that is sure enough, so that the answers hold the true class for at
        least ``coverage`` of faces (the threshold calibrated by ``cnntree calibrate --coverage``).
        ``hierarchy``: None (a tree's own, or the one stored with the model), a tree spec, or
        ``"abstain"`` (a class, or any of them)."""
        from ..compose import answers

        found = answers.hierarchy_for(self, hierarchy)
        return np.array([a.label for a in answers.answer(self, self.predict_proba(images), found, coverage)])

    def score(self, images, labels, sample_weight=None) -> float:
        """Accuracy on ``images`` (scikit-learn's ``score``); ``labels`` are class names or indices."""
        self._check_fitted()
        labels = as_labels(labels, list(self.classes_))
        return float(np.average(self.predict(images) == self.classes_[labels], weights=sample_weight))

    @property
    def classes_(self) -> np.ndarray:
        """The class names in output order, once fitted (scikit-learn's ``classes_``)."""
        self._check_fitted()
        return np.array(self.spec_.classes)

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
        clf.spec_ = spec
        clf.networks_ = {node.id: networks[node.id] if isinstance(networks[node.id], (Columns, *RUNTIMES.values()))
                         else KerasRuntime(networks[node.id]) for node in spec.nodes}
        clf.val_accuracy_, clf.priors_, clf.histories_ = dict(val_accuracy or {}), dict(priors or {}), dict(histories or {})
        clf.calibrations_ = dict(calibrations or {})
        return clf

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "networks_")

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise NotFitted("this classifier is not trained yet: call fit() or load a model directory")
