"""The composition family: routing and voting strategies, calibration, the classifier, metrics,
reports, storage and transfer. Where probabilities are combined: ``routing`` and ``voting``."""

from .classifier import CnnTreeClassifier
from .storage import export, load, save

__all__ = ["CnnTreeClassifier", "export", "load", "save"]
