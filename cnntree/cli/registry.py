"""Every ``cnntree`` command in one table: its name, help line, the module that declares its
arguments and runs it, and whether it starts the backend. A command's module is imported only
when that command runs (``cnntree validate`` never loads Keras, MLflow or OpenCV)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One command: ``module.COMMANDS[name]`` holds ``add_arguments(parser)``, ``run(args)`` (the
    result, or None), ``text(result)`` (the result for people; ``--json`` prints it as JSON) and
    optionally ``check(args)`` (inputs read before the backend starts)."""

    name: str
    help: str
    module: str
    backend: bool = True

    def load(self):
        """The class that implements the command (its module imported now)."""
        return importlib.import_module(f".{self.module}", __package__).COMMANDS[self.name]


REGISTRY = (
    Command("validate", "check a spec; exit 0 when valid, 2 otherwise", "spec_commands", backend=False),
    Command("show", "print the hierarchy as text, optionally draw it as a picture", "spec_commands", backend=False),
    Command("data", "split sizes and every node's balanced training-set counts", "spec_commands", backend=False),
    Command("augment", "a preview grid of one node's training augmentation (both engines)", "spec_commands"),
    Command("train", "train every network, evaluate on the test splits, log to MLflow", "train_commands"),
    Command("compare-trees", "train specs under one budget and rank them with a paired test", "train_commands"),
    Command("compare", "cnntree runs in the MLflow store as a table, and per spec over seeds", "runs_commands",
            backend=False),
    Command("evaluate", "evaluate a trained classifier on a test split or another data set", "evaluate_commands"),
    Command("calibrate", "refit a trained classifier's calibration on its validation faces, or the thresholds of "
            "its hierarchical answers (--coverage); no retraining", "evaluate_commands"),
    Command("predict", "the emotion of every face in photos, or of face crops", "predict_commands"),
    Command("explain", "heat maps of what each network looks at, one picture per face", "predict_commands"),
    Command("export", "write a trained classifier as ONNX, TFLite or SavedModel networks", "predict_commands"),
    Command("ensemble", "combine trained single networks into one voting classifier, nothing retrained",
            "predict_commands"),
    Command("suggest", "propose a class hierarchy from a flat classifier's confusions", "model_commands"),
    Command("transfer", "retrain heads on another data set, with K-fold cross-validation", "model_commands"),
    Command("suggest-labels", "which model class each target class resembles (nothing applied)", "model_commands"),
    Command("models", "the models that ship with cnntree: kind, size, data, test figures", "catalog_commands",
            backend=False),
    Command("mirror", "label the faces of a webcam, video or photo with their emotion", "live_commands"),
    Command("rehearse", "score a rehearsal video against a script of expected emotions", "live_commands"),
    Command("serve", "the live mirror as a local web page: webcam, labels, timeline, rehearsal, uploads",
            "live_commands"),
)
