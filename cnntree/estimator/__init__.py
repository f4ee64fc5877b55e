"""The estimator family: ``CnnTreeClassifier`` (scikit-learn's contract over the training stages
and the combining strategies), its storage, voting ensembles of trained models, and transfer of a
trained model to new data."""

_PUBLIC = {"CnnTreeClassifier": "classifier", "export": "storage", "load": "storage", "save": "storage"}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    """The public names, imported on first use: a command that reads model references need not
    load scikit-learn and Keras."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'cnntree.estimator' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
