"""Training one network from its spec section: optimiser, schedule, loss, augmentation, checkpoints.

Every epoch ends with an atomic checkpoint (model with optimiser state, plus a small JSON state),
so an interrupted training resumes from its last finished epoch.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import keras
import numpy as np

from ..data.augment import build_augmenter, engine_for
from ..data.mixing import build_mixer
from ..errors import CnnTreeError
from ..files import write_atomically, write_text_atomically
from ..spec.schema import load_json
from . import pace
from .allocator import reuse_freed_memory
from .cost import multiply_adds
from .models import create_model
from .schedules import Warmup, build_step_variables, compile_model, make_loss, make_optimizer, schedule_callback
from .warmstart import warm_start, weighted_layers

# ---------------------------------------------------------------------------- batch normalisation


STATE = {"epoch": int, "history": dict, "best_loss": (int, float), "best_epoch": int, "wait": int}


def read_state(folder: Path) -> dict:
    """A network checkpoint's ``state.json``, checked: a damaged one is one line, not a crash."""
    where = folder / "state.json"
    state = load_json(where, "checkpoint state")
    if not isinstance(state, dict) or any(not isinstance(state.get(k), t) or isinstance(state.get(k), bool)
                                          for k, t in STATE.items()):
        raise CnnTreeError(f"{where}: damaged checkpoint state (expected {', '.join(STATE)}); train without "
                           "--resume to start afresh")
    return state


def batchnorm_momentum(steps_per_epoch: int) -> float:
    """The moving-average momentum under which BatchNormalization's inference statistics forget
    their start (mean 0, variance 1) within one epoch: 0.01 ** (1 / steps), at most Keras's 0.99.

    A saved network normalises with those moving statistics. At 0.99 they need a few hundred steps
    to converge; a small data set (the bundled sample: ~5 steps per epoch) never gets there, and
    every face then gets the same answer at inference although training accuracy climbs. On the
    full FER2013 (400+ steps per epoch) this is Keras's own 0.99.
    """
    return min(0.99, 0.01 ** (1 / max(1, steps_per_epoch)))


def set_batchnorm_momentum(model, steps_per_epoch: int) -> None:
    """Set every BatchNormalization layer's momentum (nested models too) before the model is traced."""
    momentum = batchnorm_momentum(steps_per_epoch)
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        stack.extend(getattr(layer, "layers", []))
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


# ---------------------------------------------------------------------------- data


def as_input(images: np.ndarray) -> np.ndarray:
    """uint8 (n, 48, 48) faces as the float (n, 48, 48, 1) pixels every model takes."""
    return images.astype(np.float32)[..., None]


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled, augmented (and, with mixup or CutMix, mixed) mini-batches of one network's training
    set, reshuffled every epoch.

    Batch ``i`` of epoch ``e`` depends on (seed, e, i) only: whoever builds it (the trainer, or
    one of ``workers`` loader processes, which augmentation needs to escape the GIL, each with its
    own copy) reseeds the augmenter per batch, so resumed trainings and any ``workers`` see the same
    batches.
    """

    def __init__(self, images, targets, n_outputs, batch_size, augment: dict, seed: int, first_epoch: int = 0,
                 workers: int = 1):
        super().__init__(workers=workers, use_multiprocessing=workers > 1)
        self.images, self.targets, self.n_outputs, self.batch_size = images, targets, n_outputs, batch_size
        self.augmenter, self.mixer, self.seed = build_augmenter(augment), build_mixer(augment), seed
        self.start_epoch(first_epoch)

    def start_epoch(self, epoch: int) -> None:
        """Fix epoch ``epoch``'s order of faces (it depends on the seed and the epoch only)."""
        self.epoch = epoch
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.images))

    def seed_for(self, index: int) -> int:
        """The augmentation seed of batch ``index`` of the current epoch."""
        return int(np.random.default_rng([self.seed, self.epoch, index]).integers(2 ** 31))

    def __len__(self):
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        faces = self.images[rows]
        if self.augmenter is not None:
            faces = self.augmenter.augment(faces, self.seed_for(index))
        x, y = as_input(faces), keras.utils.to_categorical(self.targets[rows], self.n_outputs)
        if self.mixer is not None:
            x, y = self.mixer.mix(x, y, np.random.default_rng([self.seed, self.epoch, index, 1]))
        return x, y

    def on_epoch_begin(self):
        reuse_freed_memory()  # TensorFlow's generator dataset, just started, has stopped that

    def on_epoch_end(self):
        self.start_epoch(self.epoch + 1)


# ---------------------------------------------------------------------------- checkpoints


class Checkpoint(keras.callbacks.Callback):
    """Best-epoch tracking, early stopping and an atomic checkpoint after every epoch.

    State (epoch, history, best validation loss, epochs without improvement) lives in
    ``state.json`` beside ``last.keras`` and ``best.weights.h5`` so that a resumed run continues
    exactly where the interrupted one stopped. With a weight average (``ema``: the SwapEMAWeights
    callback that validated on it), the best weights saved are the average's; ``last.keras`` keeps
    the raw ones, with the average inside the optimiser's state, so a resumed run continues both.
    """

    def __init__(self, folder: Path, patience: int, state: dict, ema=None):
        super().__init__()
        self.folder, self.patience, self.state, self.ema = folder, patience, state, ema

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        for key, value in logs.items():
            self.state["history"].setdefault(key, []).append(value)
        loss = logs.get("val_loss", logs.get("loss"))
        if loss < self.state["best_loss"]:
            self.state.update(best_loss=loss, best_epoch=epoch, wait=0)
            if self.ema is not None:
                self.ema.on_test_begin()  # the average's weights in the model, as for validation
            write_atomically(self.folder / "best.weights.h5", self.model.save_weights)
            if self.ema is not None:
                self.ema.on_test_end()
        else:
            self.state["wait"] += 1
        self.state["epoch"] = epoch + 1
        write_atomically(self.folder / "last.keras", self.model.save)
        write_text_atomically(self.folder / "state.json", json.dumps(self.state))
        if self.patience and self.state["wait"] >= self.patience:
            self.model.stop_training = True


class Progress(keras.callbacks.Callback):
    """One line per epoch, with the time left for this network at the pace so far (at most: early
    stopping may end it sooner):
    ``[NN2 2/4] epoch 3/40  loss 0.61  accuracy 0.68  val_loss 0.66  val_accuracy 0.65  12s  (<= 7m24s left)``."""

    def __init__(self, label: str, epochs: int, printer=print):
        super().__init__()
        self.label, self.epochs, self.printer = label, epochs, printer
        self.times: list[float] = []

    def median_epoch(self) -> float:
        """Seconds per epoch: the median, the first epoch (which also traces) left out once there are more."""
        timed = sorted(self.times[1:] or self.times)
        return timed[len(timed) // 2]

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.times.append(time.perf_counter() - self.started)
        parts = [f"{k} {logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs]
        left = (self.epochs - epoch - 1) * self.median_epoch()
        self.printer(f"[{self.label}] epoch {epoch + 1}/{self.epochs}  " + "  ".join(parts)
                     + f"  {self.times[-1]:.0f}s" + (f"  (<= {duration(left)} left)" if left >= 1 else ""))


def duration(seconds: float) -> str:
    """``42s``, ``7m24s``, ``2h05m``: a time for people."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


# ---------------------------------------------------------------------------- training


def compile_network(model, cfg: dict, frozen_trunk: bool = False) -> None:
    """Compile ``model`` under its train section; ``frozen_trunk``: every weighted layer below the
    output layer is frozen (only the head trains; BatchNormalization then runs on its statistics).
    Freezing or unfreezing takes effect at compile, with a fresh optimiser."""
    set_trunk_trainable(model, not frozen_trunk)
    compile_model(model, make_optimizer(cfg["optimizer"], cfg["ema"]), loss=make_loss(cfg), metrics=["accuracy"])


def set_trunk_trainable(model, trainable: bool) -> list:
    """Freeze or unfreeze every weighted layer below ``model``'s output layer; returns those changed."""
    changed = [layer for layer in weighted_layers(model)[:-1] if layer.trainable != trainable]
    for layer in changed:
        layer.trainable = trainable
    return changed


def trunk_frozen(model) -> bool:
    """Whether ``model``'s trunk is frozen (as ``compile_network`` left it, or a checkpoint kept it)."""
    return not weighted_layers(model)[0].trainable


def train_network(settings: dict, n_outputs: int, train: tuple, validation: tuple, folder: Path,
                  class_weight=None, label: str = "net", callbacks=(), printer=print) -> tuple[keras.Model, dict]:
    """Train one network; ``settings`` holds its ``model``, ``augment`` and ``train`` sections, and
    optionally ``init`` (``{"file", "groups"}``: a flat network to warm-start from).

    ``train`` and ``validation`` are (uint8 faces, group targets). Resumes from ``folder`` when
    it holds a checkpoint of an unfinished run. Returns the model (best epoch restored when
    ``restore_best``) and the state with per-epoch history.
    """
    cfg = settings["train"]
    folder = Path(folder)
    state_file = folder / "state.json"
    state = {"epoch": 0, "history": {}, "best_loss": float("inf"), "best_epoch": -1, "wait": 0}
    keras.utils.set_random_seed(cfg["seed"])
    if state_file.exists() and (folder / "last.keras").exists():
        state = read_state(folder)
        try:
            model = keras.saving.load_model(folder / "last.keras", safe_mode=True)
        except Exception as error:  # noqa: BLE001 - Keras raises many types for a damaged file
            raise CnnTreeError(f"{folder / 'last.keras'}: damaged checkpoint ({type(error).__name__}); train "
                               "without --resume to start afresh") from None
        if int(model.output_shape[-1]) != n_outputs:
            raise CnnTreeError(f"{folder / 'last.keras'}: a checkpoint with {model.output_shape[-1]} outputs where "
                               f"this network has {n_outputs} (another network's?); train without --resume")
        build_step_variables(model)
        printer(f"[{label}] resuming after epoch {state['epoch']}")
    else:
        model = create_model(n_outputs=n_outputs, normalize=cfg["normalize"], **settings["model"])
        set_batchnorm_momentum(model, math.ceil(len(train[1]) / cfg["batch_size"]))
        if settings.get("init"):  # a warm start: the flat network's trunk, heads from its class weights
            flat = keras.saving.load_model(settings["init"]["file"], safe_mode=True, compile=False)
            warm_start(model, flat, settings["init"]["groups"])
        compile_network(model, cfg, frozen_trunk=cfg["freeze_trunk_epochs"] > 0)
    batches = AugmentedBatches(train[0], train[1], n_outputs, cfg["batch_size"], settings["augment"],
                               seed=cfg["seed"], first_epoch=state["epoch"],
                               workers=1 if engine_for(settings["augment"]["engine"]) == "batch" else cfg["workers"])
    x_val, y_val = as_input(validation[0]), keras.utils.to_categorical(validation[1], n_outputs)

    def stopped_early():
        return cfg["early_stopping"] and state["wait"] >= cfg["early_stopping"]

    trained = state["epoch"] < cfg["epochs"] and not stopped_early()
    progress = Progress(label, cfg["epochs"], printer)
    # the head alone for the first freeze_trunk_epochs, then the whole network (recompiled once)
    for end, frozen in ((min(cfg["freeze_trunk_epochs"], cfg["epochs"]), True), (cfg["epochs"], False)):
        if state["epoch"] >= end or stopped_early():
            continue
        if trunk_frozen(model) != frozen:
            compile_network(model, cfg, frozen_trunk=frozen)
            printer(f"[{label}] the trunk trains from epoch {state['epoch'] + 1} on")
        # validation (and the best weights) on the weight average; Keras ends fit with the average in place
        ema = keras.callbacks.SwapEMAWeights() if cfg["ema"] else None
        warmup = [Warmup(cfg["warmup_epochs"], len(batches))] if cfg["warmup_epochs"] else []
        # shuffle=False: the batches already hold a seeded (seed, epoch) order; Keras's own shuffle of
        # the batch indices draws from a global generator that a resumed process does not share
        model.fit(batches, validation_data=(x_val, y_val), epochs=end, initial_epoch=state["epoch"],
                  class_weight=class_weight, verbose=0, shuffle=False,
                  callbacks=[schedule_callback(cfg), *warmup, *([ema] if ema else []),
                             Checkpoint(folder, cfg["early_stopping"], state, ema),
                             progress, *callbacks])
    if len(progress.times) > 1:  # the first epoch also traces: the pace is that of the later ones
        pace.record(settings["model"]["name"], progress.median_epoch(), len(train[1]), multiply_adds(model))
    if cfg["restore_best"] and (folder / "best.weights.h5").exists():
        model.load_weights(folder / "best.weights.h5")
    elif cfg["ema"] and not trained:  # finished earlier, last.keras holds the raw weights: the average is the result
        model.optimizer.finalize_variable_values(model.trainable_variables)
    return model, state
