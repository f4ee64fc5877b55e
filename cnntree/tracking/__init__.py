"""The tracking family: the MLflow store, runs and their children, the pyfunc model, and the
experiment that ``cnntree train`` runs. ``PyfuncClassifier`` stays importable here: MLflow models
logged by earlier versions name it."""

from .pyfunc import PyfuncClassifier, log_pyfunc
from .store import DEFAULT_URI, RUNS, tracking_uri, use_experiment

__all__ = ["DEFAULT_URI", "RUNS", "PyfuncClassifier", "log_pyfunc", "tracking_uri", "use_experiment"]
