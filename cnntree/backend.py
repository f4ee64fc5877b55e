"""Starting the Keras backend: quietly, and saying in one line when a GPU does the work; and
ending a process that loaded it without the interpreter's teardown of its objects.

TensorFlow prints native start-up lines (CUDA probes on a machine without a GPU, absl notices)
straight to the process's standard error, where Python cannot filter them; they read as errors
to users. They are silenced while the backend starts; ``--debug`` shows them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading


@contextlib.contextmanager
def native_stderr_silenced():
    """File descriptor 2 points at /dev/null inside the block (Python's own ``sys.stderr`` too)."""
    import sys

    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(null)
        os.close(saved)


def quiet_libraries() -> None:
    """Library chatter (TensorFlow retracing notes, MLflow hints) is not for cnntree's users."""
    import logging
    import warnings

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"mlflow\..*")


def where_training_runs() -> str | None:
    """A training's first line: the GPU it runs on, or on a CPU what the CPU guard (``cnntree.cpu``)
    applied or left to the user; None on a CPU the guard had nothing to do for."""
    from .cpu import NOTE as CPU_NOTE

    device = accelerator()
    if device:
        return f"training on the GPU {device}"
    return None if CPU_NOTE.startswith("oneDNN: unchanged") else CPU_NOTE


def start(debug: bool = False) -> None:
    """Import Keras and run one tiny operation, so the backend's devices are set up now."""
    if debug:
        import sys

        from .cpu import NOTE as CPU_NOTE

        print(f"cnntree: {CPU_NOTE}", file=sys.stderr)
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        import keras  # noqa: F401
        return
    with native_stderr_silenced():
        import keras

        keras.ops.convert_to_numpy(keras.ops.zeros(1) + 1)


def accelerator() -> str | None:
    """The GPU Keras computes on, as "GPU name (backend)", or None on a CPU."""
    import keras

    backend = keras.backend.backend()
    with contextlib.suppress(Exception):
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            return f"{device.device_kind} ({backend})" if device.platform == "gpu" else None
        if backend == "torch":
            import torch

            return f"{torch.cuda.get_device_name(0)} ({backend})" if torch.cuda.is_available() else None
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return f"{gpus[0].name} ({backend})" if gpus else None
    return None


def exit_promptly(code: int) -> None:
    """End the process with ``code`` as the interpreter would, less its teardown of the backend's
    objects (2 s after every training or prediction on a 2-core CPU): threading's exit hooks (idle
    thread pools end) and a join of every non-daemon thread, the exit handlers, a flush of the
    standard streams, then ``os._exit``. Ctrl-C while a thread finishes ends it as interrupted (130)."""
    try:
        threading._shutdown()
        atexit._run_exitfuncs()
    except KeyboardInterrupt:
        code = 130
    _flush_and_exit(code)


def exit_promptly_at_the_end() -> None:
    """For a worker process (a ``--jobs`` pool's initializer): when it ends normally, the exit
    handlers registered after this one run, then it ends as :func:`exit_promptly` does."""
    atexit.register(_flush_and_exit, 0)


def _flush_and_exit(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream: nothing to flush to
            stream.flush()
    os._exit(code)
