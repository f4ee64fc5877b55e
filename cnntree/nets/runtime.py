"""Runtimes: one small class per way of running a saved network (Keras, ONNX Runtime, LiteRT).

Each takes a batch of grey faces as float32 (n, 48, 48, 1) raw pixels (0-255: every network
normalises inside itself) and returns the network's probabilities, so the classifier composes
networks the same way whichever runtime runs them. ``export`` writes a classifier's networks in
another runtime's format; the file suffix says which runtime loads a network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import CnnTreeError

CHUNK = 256


class KerasRuntime:
    """A Keras model, called batch by batch (``predict_on_batch`` skips ``predict``'s per-call setup)."""

    name = "keras"
    suffix = ".keras"

    def __init__(self, model):
        self.model = model
        self.outputs = int(model.output_shape[-1])  # probabilities per face

    @classmethod
    def load(cls, path: Path) -> KerasRuntime:
        import keras

        from .heads import CUSTOM_OBJECTS

        return cls(keras.saving.load_model(path, safe_mode=True, compile=False, custom_objects=CUSTOM_OBJECTS))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(self.model.predict_on_batch(batch[i:i + CHUNK]))
                               for i in range(0, len(batch), CHUNK)])


class OnnxRuntime:
    """An ONNX file run by ONNX Runtime on the CPU."""

    name = "onnx"
    suffix = ".onnx"

    def __init__(self, session):
        self.session = session
        self.input = session.get_inputs()[0].name
        self.outputs = int(session.get_outputs()[0].shape[-1])

    @classmethod
    def load(cls, path: Path) -> OnnxRuntime:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads leave the
        # cores to face detection between frames instead of spinning
        return cls(onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: np.ascontiguousarray(batch, np.float32)})[0]


class LiteRuntime:
    """A LiteRT (TensorFlow Lite) flatbuffer; the interpreter is resized to each batch size."""

    name = "tflite"
    suffix = ".tflite"

    def __init__(self, interpreter):
        self.interpreter = interpreter
        self.input = interpreter.get_input_details()[0]["index"]
        self.output = interpreter.get_output_details()[0]["index"]
        self.outputs = int(interpreter.get_output_details()[0]["shape"][-1])
        self.batch = None

    @classmethod
    def load(cls, path: Path) -> LiteRuntime:
        from ai_edge_litert.interpreter import Interpreter  # TensorFlow's tf.lite copy is deprecated

        return cls(Interpreter(model_path=str(path)))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) != self.batch:
            self.interpreter.resize_tensor_input(self.input, [len(batch), *batch.shape[1:]])
            self.interpreter.allocate_tensors()
            self.batch = len(batch)
        self.interpreter.set_tensor(self.input, np.ascontiguousarray(batch, np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output).copy()


class Columns:
    """One node's outputs inside a network that computes every node of a shared-trunk tree in one
    pass (``nets.heads.one_pass``): its columns ``start:stop`` of that network's output. ``model`` is
    the node's own Keras model (sharing the trunk's layers) when the network runs on Keras."""

    def __init__(self, network, start: int, stop: int, model=None):
        self.network, self.start, self.stop, self.model = network, start, stop, model
        self.name, self.outputs = network.name, stop - start

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.network(batch)[:, self.start:self.stop]


def one_pass_columns(network, sizes: list[int], models=None) -> list[Columns]:
    """Each node's ``Columns`` of a one-pass ``network`` whose nodes have ``sizes`` outputs."""
    bounds = np.cumsum([0, *sizes])
    return [Columns(network, int(a), int(b), None if models is None else models[i])
            for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]


RUNTIMES = {runtime.name: runtime for runtime in (KerasRuntime, OnnxRuntime, LiteRuntime)}
# export format -> (Keras export format, file suffix, runtime that loads it or None)
EXPORTS = {"onnx": ("onnx", ".onnx", "onnx"), "tflite": ("litert", ".tflite", "tflite"),
           "savedmodel": ("tf_saved_model", "", None)}


def runtime_name(path: Path) -> str | None:
    """The runtime a network file's suffix names, or None."""
    return next((name for name, runtime in RUNTIMES.items() if Path(path).suffix == runtime.suffix), None)


def load_network(path: Path):
    """The runtime for a network file, chosen by its suffix; a clear error when it cannot load."""
    name = runtime_name(path)
    if name is None:
        raise CnnTreeError(f"{path}: not a network cnntree can run (a SavedModel export is for TensorFlow "
                           f"Serving; run .keras, .onnx or .tflite networks)")
    if not Path(path).is_file():
        raise CnnTreeError(f"{path}: missing network file")
    try:
        return RUNTIMES[name].load(Path(path))
    except ImportError as error:
        raise CnnTreeError(f"{path}: the {name} runtime is not installed ({error.name}); "
                           f"pip install 'cnntree[export]'") from None
    except Exception as error:  # every runtime raises its own types for a foreign or damaged file
        first = str(error).splitlines()[0] if str(error) else ""
        raise CnnTreeError(f"{path}: cannot load network ({type(error).__name__}: {first})") from None


def save_network(model, path: Path) -> None:
    """Write one Keras network natively, its architecture and weights only: a trained model's
    optimiser state (Adam's two moments, a weight average) is 2-3 times the weights' size, and
    nothing that loads a saved classifier uses it (a resumed training reads its own checkpoints)."""
    bare = model.__class__.from_config(model.get_config())
    bare.set_weights(model.get_weights())
    bare.save(path)


def export_network(model, fmt: str, path: Path) -> None:
    """Write one Keras network in ``fmt`` (see ``EXPORTS``) at ``path``."""
    import warnings

    model(np.zeros((1, *model.input_shape[1:]), np.float32))  # Keras exports only models that were called
    with warnings.catch_warnings():  # the converters' deprecation chatter is not for cnntree's users
        warnings.simplefilter("ignore")
        model.export(str(path), format=EXPORTS[fmt][0], verbose=False)
