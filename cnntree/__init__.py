"""cnntree: hierarchical ensembles of convolutional networks for facial expression recognition.

The families, from the bottom up (``docs/architecture.md``): ``spec`` (the JSON spec and its
graph), ``data`` (faces, splits, node data, augmentation), ``nets`` (models, one network's
training, runtimes), ``compose`` (routing, voting, calibration, hierarchical answers),
``training`` (the stages of a fit), ``estimator`` (the classifier, storage, ensembles, transfer),
``evaluation`` (metrics, reports, explanations), ``hierarchy`` (hierarchies suggested, equal-cost
controls), ``tracking`` (MLflow), ``workflows`` (train, transfer, compare, refit), ``live`` (the
mirror, rehearsal, the web page) and ``cli``.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter is not for users
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # nor MLflow's notes on creating its tables

from .cpu import apply_guard  # noqa: E402  before TensorFlow loads

CPU_NOTE = apply_guard()  # what the CPU guard did, for ``cnntree train`` and ``--debug``

from importlib.metadata import PackageNotFoundError, version  # noqa: E402

try:  # one source of truth: the installed package's metadata (pyproject.toml)
    __version__ = version("cnntree")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
_PUBLIC = {"CnnTreeClassifier": ("estimator", "CnnTreeClassifier"), "CnnTreeError": ("errors", "CnnTreeError"),
           "export_model": ("estimator.storage", "export"), "load_model": ("models", "load_model"),
           "save_model": ("estimator.storage", "save"), "load_faces": ("data", "load_faces"),
           "load_for_spec": ("data", "load_for_spec"), "load_spec": ("spec", "load_spec"),
           "with_overrides": ("spec", "with_overrides")}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    """The public names, imported on first use: ``cnntree validate`` need not load scikit-learn or
    OpenCV. The backend starts as quietly as in the command line (TensorFlow's native start-up lines
    silenced, its retracing notes off)."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'cnntree' has no attribute {name!r}")
    import importlib

    from .backend import native_stderr_silenced, quiet_libraries, start

    quiet_libraries()
    module, attribute = _PUBLIC[name]
    if module.startswith("estimator") or module == "models":  # the names that run networks start the backend now, silenced
        start()
    with native_stderr_silenced():
        return getattr(importlib.import_module(f".{module}", __name__), attribute)
