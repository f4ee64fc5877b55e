"""The MLflow pyfunc model: ``mlflow models serve`` serves any saved cnntree classifier."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import mlflow
import numpy as np

from .store import quiet_mlflow

PACKAGE = Path(__file__).resolve().parents[1]


class PyfuncClassifier(mlflow.pyfunc.PythonModel):
    """Serves a saved classifier: input rows are faces, as FER2013's space-separated ``pixels``
    column or 2304 numeric columns; output is one probability column per class and ``label``."""

    _skip_type_hint_validation = True  # rows are parsed in predict; MLflow's type-hint check only warns

    def load_context(self, context):
        """Load the saved classifier logged with the model."""
        from ..estimator.storage import load

        self.classifier = load(context.artifacts["classifier"])

    def predict(self, context, model_input, params=None):
        """Class probabilities and the label for each row's face."""
        import pandas as pd

        frame = pd.DataFrame(model_input)
        if "pixels" in frame.columns:
            faces = np.stack([np.asarray(str(p).split(), np.float32) for p in frame["pixels"]])
        else:
            faces = frame.to_numpy(np.float32)
        faces = np.clip(faces, 0, 255).astype(np.uint8).reshape(-1, 48, 48)
        proba = self.classifier.predict_proba(faces)
        out = pd.DataFrame(proba, columns=list(self.classifier.spec_.classes))
        out["label"] = [self.classifier.spec_.classes[i] for i in proba.argmax(1)]
        return out


def log_pyfunc(classifier_dir: Path) -> str:
    """Log the saved classifier as an MLflow pyfunc model (``mlflow models serve`` serves it); its URI."""
    with quiet_mlflow(), tempfile.TemporaryDirectory(prefix="cnntree-code-") as scratch:
        code = shutil.copytree(PACKAGE, Path(scratch) / PACKAGE.name, ignore=not_served)
        return mlflow.pyfunc.log_model(name="model", python_model=PyfuncClassifier(),
                                       artifacts={"classifier": str(classifier_dir)}, code_paths=[str(code)],
                                       pip_requirements=["tensorflow", "keras>=3", "numpy", "pandas", "scikit-learn",
                                                         "networkx", "albumentations", "opencv-python-headless<5",
                                                         "matplotlib", "mlflow"]).model_uri


def not_served(directory: str, names: list[str]) -> set[str]:
    """What a served classifier never reads, left out of the code logged with it (18 MB a run
    otherwise): compiled caches, the bundled sample and the shipped models."""
    folder = Path(directory)
    return {name for name in names if name == "__pycache__" or (folder == PACKAGE and name == "sample")
            or (folder == PACKAGE / "pretrained" and (folder / name).is_dir())}
