"""Calibration: a network's probabilities made to mean what they say, before routing or voting.

Soft routing multiplies node probabilities, so a tree is only as good as its nodes' calibration.
Two causes are corrected, in this order:

1. the prior shift of a network trained on resampled data (fit-free: the recorded group
   frequencies say it): a balanced network answers as if fear were 1 face in 2, not 1 in 7;
2. over- or under-confidence, fitted after training on the validation faces, which keep the
   natural class mix: temperature scaling, vector scaling or isotonic regression.

Each strategy is one small class (``fit`` on validation probabilities, ``apply`` everywhere, its
fitted ``state`` saved in ``meta.json``); ``balance.calibrate`` in the spec names it.
"""

from __future__ import annotations

import numpy as np

from ..errors import CnnTreeError
from ..spec.schema import ListOf, Num, Obj

EPS = 1e-12


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Logits up to a per-row constant (which softmax ignores): what the scaling methods rescale."""
    return np.log(np.clip(probabilities, EPS, 1.0))


class NoCalibration:
    """The network's probabilities as they are."""

    name = "none"
    STATE = Obj({})

    def __init__(self, priors: dict | None = None):
        self.priors = priors
        self.state: dict = {}
        self.at_bound = False  # the fit ended at a bound of its parameters: say so, it is no real optimum

    def fit(self, probabilities: np.ndarray, targets: np.ndarray) -> NoCalibration:
        return self

    def record(self) -> dict:
        """What ``meta.json`` keeps: the strategy and its fitted state."""
        return {"method": self.name, "state": self.state}

    def check_state(self, state: dict, groups: int | None, where: str) -> None:
        """A loaded state that fits the schema but not the network: one line (subclasses that have
        one)."""

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        return probabilities


class PriorCorrection(NoCalibration):
    """p'(k) proportional to p(k) x true(k) / train(k) (Saerens et al., 2002): the Bayes-optimal
    answer under the natural group frequencies of the network's own training split. Without
    recorded priors (a network trained on the natural mix) it changes nothing."""

    name = "prior"

    def correct(self, probabilities: np.ndarray) -> np.ndarray:
        if self.priors is None:
            return probabilities
        weights = np.asarray(self.priors["true"], np.float64) / np.asarray(self.priors["train"], np.float64)
        weighted = probabilities * weights
        return weighted / np.maximum(weighted.sum(axis=1, keepdims=True), EPS)

    def apply(self, probabilities):
        return self.correct(probabilities)


class TemperatureScaling(PriorCorrection):
    """softmax(log p / T), one temperature fitted by minimising the validation NLL (Guo et al.,
    2017); the argmax never changes. T > 1 softens an over-confident network."""

    name = "temperature"
    STATE = Obj({"temperature": Num(lo=1e-3, hi=1e3)})

    def __init__(self, priors=None):
        super().__init__(priors)
        self.state = {"temperature": 1.0}

    def fit(self, probabilities, targets):
        logits = log_probabilities(self.correct(probabilities))
        ((scale,), _), self.at_bound = _fit_scaling(logits, targets, tied=True)
        self.state = {"temperature": float(1.0 / scale)}
        return self

    def apply(self, probabilities):
        return softmax(log_probabilities(self.correct(probabilities)) / self.state["temperature"])


class VectorScaling(PriorCorrection):
    """softmax(w * log p + b), a weight and a bias per group fitted on the validation NLL: also
    re-balances the groups, so it can fix a prior the correction missed."""

    name = "vector"
    STATE = Obj({"weights": ListOf(Num(lo=-1e3, hi=1e3), min_len=1), "biases": ListOf(Num(lo=-1e3, hi=1e3), min_len=1)})

    def __init__(self, priors=None):
        super().__init__(priors)
        self.state = {}

    def check_state(self, state, groups, where):
        lengths = {len(state["weights"]), len(state["biases"])}
        if groups is not None and lengths - {groups}:
            raise CnnTreeError(f"{where}: vector scaling for {lengths} groups where the network has {groups}")

    def fit(self, probabilities, targets):
        (weights, biases), self.at_bound = _fit_scaling(log_probabilities(self.correct(probabilities)), targets,
                                                        tied=False)
        self.state = {"weights": weights.tolist(), "biases": biases.tolist()}
        return self

    def apply(self, probabilities):
        if not self.state:
            return self.correct(probabilities)
        logits = log_probabilities(self.correct(probabilities))
        return softmax(logits * np.asarray(self.state["weights"]) + np.asarray(self.state["biases"]))


class IsotonicCalibration(PriorCorrection):
    """A monotone map per group, fitted one group against the rest (Zadrozny & Elkan, 2002), then
    renormalised; exact for the two-group nodes of a one-vs-rest split. Needs a few hundred
    validation faces; may change the argmax of a node with three or more groups."""

    name = "isotonic"
    STATE = Obj({"x": ListOf(ListOf(Num(lo=0, hi=1), min_len=1), min_len=1),
                 "y": ListOf(ListOf(Num(lo=0, hi=1), min_len=1), min_len=1)})

    def __init__(self, priors=None):
        super().__init__(priors)
        self.state = {}

    def check_state(self, state, groups, where):
        if len(state["x"]) != len(state["y"]) or any(len(a) != len(b) or a != sorted(a)
                                                     for a, b in zip(state["x"], state["y"])):
            raise CnnTreeError(f"{where}: isotonic thresholds must be increasing and pair up with their values")
        if groups is not None and len(state["x"]) != len(self.mapped_groups(groups)):
            raise CnnTreeError(f"{where}: isotonic maps for {len(state['x'])} groups where the network has {groups}")

    @staticmethod
    def mapped_groups(n_groups: int) -> range:
        """Two groups: one map (group 1; group 0 is the rest); more: one map per group."""
        return range(1, 2) if n_groups == 2 else range(n_groups)

    def fit(self, probabilities, targets):
        from sklearn.isotonic import IsotonicRegression

        corrected = self.correct(probabilities)
        xs, ys = [], []
        for k in self.mapped_groups(corrected.shape[1]):
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(corrected[:, k], targets == k)
            xs.append(iso.X_thresholds_.tolist())
            ys.append(iso.y_thresholds_.tolist())
        self.state = {"x": xs, "y": ys}
        return self

    def apply(self, probabilities):
        corrected = self.correct(probabilities)
        if not self.state:
            return corrected
        groups = self.mapped_groups(corrected.shape[1])
        mapped = [np.interp(corrected[:, k], x, y) for k, x, y in zip(groups, self.state["x"], self.state["y"])]
        if corrected.shape[1] == 2:
            return np.stack([1.0 - mapped[0], mapped[0]], axis=1)
        out = np.stack(mapped, axis=1) + EPS
        return out / out.sum(axis=1, keepdims=True)


CALIBRATIONS = {c.name: c for c in (NoCalibration, PriorCorrection, TemperatureScaling, VectorScaling,
                                    IsotonicCalibration)}


def make_calibration(name: str, priors: dict | None = None, state: dict | None = None, groups: int | None = None,
                     where: str = "calibration") -> NoCalibration:
    """Strategy ``name`` with the priors recorded at fit time and, when loading, its fitted state
    (checked against its schema and the network's number of groups)."""
    calibration = CALIBRATIONS[name](priors)
    if state:
        state = calibration.STATE.parse(state, where)
        calibration.check_state(state, groups, where)
        calibration.state = state
    return calibration


def training_priors(before, after, class_weight=None) -> dict:
    """Group frequencies as trained on (resampled counts, times loss weights) and as they occur."""
    before, after = np.asarray(before, np.float64), np.asarray(after, np.float64)
    effective = after * np.array([class_weight.get(k, 1.0) for k in range(len(after))]) if class_weight else after
    return {"train": (effective / effective.sum()).tolist(), "true": (before / before.sum()).tolist()}


def _fit_scaling(logits: np.ndarray, targets: np.ndarray, tied: bool) -> tuple[tuple[np.ndarray, np.ndarray], bool]:
    """Minimise the NLL of softmax(w * logits + b) over w (one shared value when ``tied``, then no
    bias) and b, by L-BFGS with the exact gradient. Returns (w, b) and whether a parameter ended at
    its bound."""
    from scipy.optimize import minimize

    n, k = logits.shape
    onehot = np.eye(k)[targets]

    def loss(params):
        w, b = (params[:1], np.zeros(k)) if tied else (params[:k], params[k:])
        z = logits * w + b
        z = z - z.max(axis=1, keepdims=True)
        log_q = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        residual = (np.exp(log_q) - onehot) / n
        grad_w = (residual * logits).sum(axis=0)
        grad = np.array([grad_w.sum()]) if tied else np.concatenate([grad_w, residual.sum(axis=0)])
        return -(log_q * onehot).sum() / n, grad

    start = np.ones(1) if tied else np.concatenate([np.ones(k), np.zeros(k)])
    bounds = np.array([(1e-3, 1e3)] * (1 if tied else k) + [(-1e3, 1e3)] * (0 if tied else k))
    found = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    at_bound = bool(np.isclose(found.x[:, None], bounds, rtol=1e-6).any())
    return ((found.x[:1], np.zeros(0)) if tied else (found.x[:k], found.x[k:])), at_bound


def calibration_metrics(probabilities, labels, bins: int = 15) -> dict:
    """How far the probabilities are from frequencies: expected calibration error (top-label
    confidence in ``bins`` equal-width bins, Guo et al. 2017), negative log-likelihood and the
    multi-class Brier score (sum over classes, 0-2), with the bins a reliability diagram draws."""
    p = np.asarray(probabilities, np.float64)
    labels = np.asarray(labels)
    n = max(len(labels), 1)
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == labels).astype(np.float64)
    which = np.clip(np.digitize(confidence, np.linspace(0, 1, bins + 1)[1:-1], right=True), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    confidence_sum, correct_sum = np.bincount(which, confidence, bins), np.bincount(which, correct, bins)
    onehot = np.eye(p.shape[1])[labels]
    return {"ece": float(np.abs(correct_sum - confidence_sum).sum() / n),
            "nll": float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, 1)).mean()) if len(labels) else 0.0,
            "brier": float(((p - onehot) ** 2).sum(axis=1).mean()) if len(labels) else 0.0,
            "reliability": {"counts": counts.tolist(),
                            "confidence": (confidence_sum / np.maximum(counts, 1)).tolist(),
                            "accuracy": (correct_sum / np.maximum(counts, 1)).tolist()}}
