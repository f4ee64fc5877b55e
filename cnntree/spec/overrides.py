"""Overrides: the one channel through which the command line and the API change a spec before
anything trains (epochs, seed, loader workers, the smoke-run budget, the data path, skipping bad
rows, the flat classifier to start from and its epochs, the joint fine-tuning's epochs), or before a trained one answers (its test-time views). They are applied once, while the spec is parsed, recorded in ``Spec.overrides``, logged
with every run and saved with every model, so a model says how it was trained."""

from __future__ import annotations

from .schema import Bool, Text
from .sections import AUGMENT, FINETUNE, SEED, TRAIN

QUICK_EPOCHS, QUICK_SAMPLES, QUICK_WIDTH = 1, 512, 0.25  # a smoke run: what --quick means
FIELDS = {"epochs": TRAIN.fields["epochs"], "seed": SEED, "workers": TRAIN.fields["workers"],
          "quick": Bool(False), "data": Text(max_len=4096), "skip_bad": Bool(False),
          "max_samples": TRAIN.fields["max_samples"], "init_from": Text(max_len=4096),
          "test_time": AUGMENT.fields["test_time"],
          "flat_epochs": TRAIN.fields["epochs"],  # the flat network's, when init.from is a spec it trains first
          "finetune_epochs": FINETUNE.fields["epochs"]}


def apply_to_network(sections: dict, overrides: dict, fixed: bool = False) -> dict:
    """A network's resolved sections with the overrides applied; ``fixed``: its architecture is
    fixed (it starts from a saved flat network), so ``--quick`` does not narrow it."""
    if not overrides:
        return sections
    train, model, augment = dict(sections["train"]), dict(sections["model"]), dict(sections["augment"])
    train.update({key: overrides[key] for key in ("epochs", "seed", "workers", "max_samples") if key in overrides})
    if "test_time" in overrides:
        augment["test_time"] = overrides["test_time"]
    if overrides.get("quick"):
        train["epochs"] = min(train["epochs"], QUICK_EPOCHS)
        train["max_samples"] = min(train["max_samples"] or QUICK_SAMPLES, QUICK_SAMPLES)
        if "width" in model and not fixed:
            model["width"] = model["width"] * QUICK_WIDTH
    return {**sections, "train": train, "model": model, "augment": augment}


def apply_to_finetune(finetune: dict, overrides: dict) -> dict:
    """A tree's ``finetune`` section with its overridden epochs, and under ``--quick`` (at most one
    joint epoch)."""
    if "finetune_epochs" in overrides:
        finetune = {**finetune, "epochs": overrides["finetune_epochs"]}
    if overrides.get("quick") and finetune["epochs"]:
        return {**finetune, "epochs": QUICK_EPOCHS}
    return finetune


def apply_to_data(data: dict, overrides: dict) -> dict:
    """The spec's ``data`` section with the overridden path and skip_bad."""
    out = dict(data)
    if "data" in overrides:
        out["path"] = overrides["data"]
    if "skip_bad" in overrides:
        out["skip_bad"] = overrides["skip_bad"]
    return out
