"""Optimisation settings from a spec's ``train`` section: learning-rate schedules (one small class
each, ``lr(epoch)``), the warm-up, the optimiser (with its weight average) and the loss."""

from __future__ import annotations

import math

import keras
import numpy as np

# Each schedule is a small class: ``lr(epoch)`` for a base learning rate and a number of epochs.


class Constant:
    """The base learning rate throughout."""

    def __init__(self, base_lr, epochs):
        self.base_lr, self.epochs = base_lr, epochs

    def lr(self, epoch):
        return self.base_lr


class Exponential(Constant):
    """The base rate times ``gamma`` per epoch."""

    def __init__(self, base_lr, epochs, gamma=0.95):
        super().__init__(base_lr, epochs)
        self.gamma = gamma

    def lr(self, epoch):
        return self.base_lr * self.gamma ** epoch


class Cosine(Constant):
    """Half a cosine from the base rate down to ``min_lr`` over the epochs."""

    def __init__(self, base_lr, epochs, min_lr=0.0):
        super().__init__(base_lr, epochs)
        self.min_lr = min_lr

    def lr(self, epoch):
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * epoch / max(1, self.epochs)))


class CosineRestarts(Constant):
    """Cosine cycles that restart, each ``t_mul`` times longer and ``m_mul`` times lower (SGDR)."""

    def __init__(self, base_lr, epochs, first_epochs=10, t_mul=2.0, m_mul=1.0, min_lr=0.0):
        super().__init__(base_lr, epochs)
        self.first, self.t_mul, self.m_mul, self.min_lr = first_epochs, t_mul, m_mul, min_lr

    def lr(self, epoch):
        start, length, peak = 0, self.first, self.base_lr
        while epoch >= start + length:
            start, length, peak = start + length, length * self.t_mul, peak * self.m_mul
        t = (epoch - start) / length
        return self.min_lr + 0.5 * (peak - self.min_lr) * (1 + math.cos(math.pi * t))


class OneCycle(Constant):
    """Linear warm-up to ``max_lr`` for ``pct_start`` of the epochs, then cosine down to base/25."""

    def __init__(self, base_lr, epochs, max_lr=0.01, pct_start=0.3):
        super().__init__(base_lr, epochs)
        self.max_lr, self.warm = max_lr, max(1, int(round(pct_start * epochs)))

    def lr(self, epoch):
        if epoch < self.warm:
            return self.base_lr + (self.max_lr - self.base_lr) * epoch / self.warm
        t = (epoch - self.warm) / max(1, self.epochs - self.warm)
        low = self.base_lr / 25
        return low + 0.5 * (self.max_lr - low) * (1 + math.cos(math.pi * t))


class Step(Constant):
    """The base rate times ``gamma`` every ``every`` epochs."""

    def __init__(self, base_lr, epochs, every=10, gamma=0.1):
        super().__init__(base_lr, epochs)
        self.every, self.gamma = every, gamma

    def lr(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.every)


SCHEDULES = {"constant": Constant, "exponential": Exponential, "cosine": Cosine,
             "cosine_restarts": CosineRestarts, "one_cycle": OneCycle, "step": Step}


def schedule_callback(train: dict) -> keras.callbacks.Callback:
    """The spec's schedule as a Keras callback (plateau is Keras's own, the others per epoch)."""
    cfg = train["schedule"]
    params = {k: v for k, v in cfg.items() if k != "name"}
    if cfg["name"] == "plateau":
        return keras.callbacks.ReduceLROnPlateau(monitor="val_loss", verbose=0, **params)
    schedule = SCHEDULES[cfg["name"]](train["optimizer"]["lr"], train["epochs"], **params)
    return keras.callbacks.LearningRateScheduler(lambda epoch, lr: schedule.lr(epoch))


class Warmup(keras.callbacks.Callback):
    """A linear warm-up over the first ``epochs`` (fractions too), step by step: step ``s`` trains at
    (s + 1) / warm-up steps of the rate the schedule set. The rate is scaled around each step and put
    back after it, so the schedule (and ReduceLROnPlateau) only ever see their own rate; a resumed
    training recomputes the step from (epoch, batch)."""

    def __init__(self, epochs: float, steps_per_epoch: int):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.steps = max(1, round(epochs * steps_per_epoch))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _set_lr(self, value):
        getattr(self.model, "jax_state_sync", lambda: None)()  # JAX keeps the step's state apart until synced
        self.model.optimizer.learning_rate = value

    def on_train_batch_begin(self, batch, logs=None):
        step = self.epoch * self.steps_per_epoch + batch
        self.scheduled = None
        if step < self.steps:
            self.scheduled = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            self._set_lr(self.scheduled * (step + 1) / self.steps)

    def on_train_batch_end(self, batch, logs=None):
        if self.scheduled is not None:
            self._set_lr(self.scheduled)


def make_optimizer(cfg: dict, ema: float = 0.0) -> keras.optimizers.Optimizer:
    """The spec's optimizer (Adam, AdamW or SGD) with its settings; ``ema`` > 0 also keeps an
    exponential moving average of the weights with that momentum (Keras's ``use_ema``)."""
    decay = cfg["weight_decay"] or None
    averaging = {"use_ema": True, "ema_momentum": ema} if ema else {}
    if cfg["name"] == "sgd":
        return keras.optimizers.SGD(cfg["lr"], momentum=cfg["momentum"], nesterov=cfg["nesterov"], weight_decay=decay,
                                    **averaging)
    cls = keras.optimizers.AdamW if cfg["name"] == "adamw" else keras.optimizers.Adam
    return cls(cfg["lr"], beta_1=cfg["beta_1"], beta_2=cfg["beta_2"], weight_decay=decay, **averaging)


def compile_model(model: keras.Model, optimizer: keras.optimizers.Optimizer, **settings) -> None:
    """``model.compile``, and every variable the first training step would create made now (see
    :func:`build_step_variables`)."""
    model.compile(optimizer=optimizer, **settings)
    build_step_variables(model)


def build_step_variables(model: keras.Model) -> None:
    """Make the variables a compiled ``model``'s first training step would create: the optimizer's,
    and the trackers of the losses and metrics (built on a zero batch, then reset). TensorFlow
    traces a step that creates variables a second time, and Keras's TensorFlow trainer creates them
    inside the traced step: tracing is most of a small network's training. A subclassed model's
    outputs are known only once it is called: its trackers are left to the first step."""
    model.optimizer.build(model.trainable_variables)
    outputs = getattr(model, "outputs", None)
    if not outputs:
        return
    zeros = [np.zeros((1, *output.shape[1:]), "float32") for output in outputs]
    targets = zeros[0] if len(zeros) == 1 else zeros
    model.compute_loss(y=targets, y_pred=targets)
    model.compute_metrics(None, targets, targets)
    model.reset_metrics()


def slower_on(optimizer: keras.optimizers.Optimizer, variables, scale: float) -> keras.optimizers.Optimizer:
    """``optimizer`` whose steps on ``variables`` (a shared trunk) take ``scale`` times its learning
    rate: Keras's optimizers have one rate for all weights, so a subclass scales it in ``update_step``,
    the method Keras documents for custom optimizers."""
    if scale == 1.0:
        return optimizer
    # the variables as update_step sees them: Keras variables (JAX, PyTorch) or their TensorFlow values
    slow = {id(v) for v in variables} | {id(v.value) for v in variables}

    class Slower(optimizer.__class__):
        def update_step(self, gradient, variable, learning_rate):
            if id(variable) in slow:
                learning_rate = learning_rate * scale
            return super().update_step(gradient, variable, learning_rate)

    return Slower.from_config(optimizer.get_config())


def make_loss(train: dict) -> keras.losses.Loss:
    """The spec's loss: cross-entropy (with label smoothing), MSE or squared hinge."""
    if train["loss"] == "mse":
        return keras.losses.MeanSquaredError()
    if train["loss"] == "squared_hinge":
        return keras.losses.SquaredHinge()
    return keras.losses.CategoricalCrossentropy(label_smoothing=train["label_smoothing"])
