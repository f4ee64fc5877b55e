"""The composition family: routing and voting strategies, calibration, the classifier, metrics,
reports, storage and transfer. Where probabilities are combined: ``routing`` and ``voting``."""

_PUBLIC = {"CnnTreeClassifier": "classifier", "export": "storage", "load": "storage", "save": "storage"}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    """The public names, imported on first use: a command that reads calibration names or routing
    strategies need not load scikit-learn and Keras."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'cnntree.compose' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
