"""Where a classifier's networks train: in this process, in a local process pool, or as Ray tasks.

A tree's networks (and an ensemble's members) do not depend on each other while they train: each
has its own data. So they can train at once. A runner takes :class:`NetworkJob` s and yields
``(position, model, state)`` as each finishes; progress lines from workers come back to the
caller's printer, models come back as ``.keras`` bytes, and checkpoints stay in each job's folder,
so ``--resume`` works the same however the networks were trained.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..backend import exit_promptly_at_the_end
from ..errors import CnnTreeError


@dataclass
class NetworkJob:
    """Everything one network's training needs; picklable, so it can travel to a worker."""

    label: str
    settings: dict
    n_outputs: int
    train: tuple  # (uint8 faces, group targets)
    validation: tuple
    folder: Path
    class_weight: dict | None = None
    tracking: object = None  # a context manager yielding extra callbacks (the network's MLflow run)


def run_job(job: NetworkJob, printer=print):
    """Train one network inside its tracking context; returns (model, state)."""
    from .train import train_network

    with job.tracking or contextlib.nullcontext([]) as callbacks:
        return train_network(job.settings, job.n_outputs, job.train, job.validation, job.folder,
                             class_weight=job.class_weight, label=job.label, callbacks=callbacks or (),
                             printer=printer)


def thread_variables(threads: int) -> dict[str, str]:
    """The environment variables that cap a process's math libraries at ``threads`` threads (read
    when the backend loads)."""
    capped = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    return {**dict.fromkeys(capped, str(threads)), "TF_NUM_INTEROP_THREADS": "1" if threads == 1 else "2"}


def limit_threads(threads: int) -> None:
    """Cap the math libraries' threads of this worker before the backend starts, so that N workers
    share the cores instead of each taking all of them."""
    os.environ.update(thread_variables(threads))
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # one-thread tf.data logs a harmless graph-rewrite error per network
    if os.environ.get("KERAS_BACKEND") == "torch":
        import torch

        torch.set_num_threads(threads)


def worker(job: NetworkJob, lines, threads: int) -> tuple[dict, bytes]:
    """What a pool process or Ray task runs: one training, progress into ``lines``, the model as bytes."""
    from ..backend import start

    limit_threads(threads)
    start()
    model, state = run_job(job, printer=lines.put)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return state, path.read_bytes()


def model_from_bytes(blob: bytes):
    """A Keras model from the ``.keras`` bytes a worker sent back (loaded in safe mode)."""
    import keras

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        path.write_bytes(blob)
        return keras.saving.load_model(path, safe_mode=True)


def drain(lines, printer) -> None:
    """Pass the workers' queued progress lines to the printer (this process is the only reader)."""
    while not lines.empty():
        printer(lines.get_nowait())


def share(cpus: int, workers: int) -> int:
    """Threads (or CPUs) per worker so that ``workers`` at once do not oversubscribe ``cpus``."""
    return max(1, cpus // max(1, workers))


class Runner(abc.ABC):
    """Where networks train: a strategy with ``check`` and ``run``."""

    def check(self) -> None:  # noqa: B027 - most runners can always run
        """Fail before any work when this runner cannot run."""

    @abc.abstractmethod
    def run(self, jobs: list[NetworkJob], printer):
        """Yield ``(position, model, state)`` for every job as it finishes."""


class Sequential(Runner):
    """One network after another, in this process (the default)."""

    def run(self, jobs, printer):
        for position, job in enumerate(jobs):
            model, state = run_job(job, printer)
            yield position, model, state


class ProcessPool(Runner):
    """Up to ``jobs`` networks at once in spawned processes (TensorFlow does not survive ``fork``)."""

    def __init__(self, jobs: int):
        self.jobs = jobs

    def run(self, jobs, printer):
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        workers = min(self.jobs, len(jobs))
        if workers == 1:  # one network: no process to start, it has every core here
            yield from Sequential().run(jobs, printer)
            return
        threads = share(os.cpu_count() or 1, workers)
        printer(f"training {len(jobs)} networks, {workers} at once ({threads} thread{'s' * (threads > 1)} each)")
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager:
            lines = manager.Queue()
            pool = ProcessPoolExecutor(workers, mp_context=context, initializer=exit_promptly_at_the_end)
            try:
                futures = {pool.submit(worker, job, lines, threads): i for i, job in enumerate(jobs)}
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    drain(lines, printer)
                    for future in done:
                        try:
                            state, blob = future.result()
                        except BrokenProcessPool:
                            raise CnnTreeError("a training process died (out of memory or killed); "
                                               "run again with --resume to continue from the checkpoints") from None
                        yield futures[future], model_from_bytes(blob), state
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
                drain(lines, printer)


class RayTasks(Runner):
    """Each network as a Ray task on an existing cluster (``address``), or ``"local"``: a Ray
    instance started here. Workers need cnntree installed, and the work folder and the MLflow store
    reachable at the same paths (a shared filesystem, or an HTTP tracking server)."""

    def __init__(self, address: str, jobs: int | None = None):
        self.address, self.jobs = address, jobs

    def check(self) -> None:
        """Ray installed, and a ``host:port`` address answering: Ray itself would retry for minutes."""
        try:
            import ray  # noqa: F401
        except ImportError:
            raise CnnTreeError("--ray: Ray is not installed; pip install 'cnntree[ray]'") from None
        host, _, port = self.address.removeprefix("ray://").rpartition(":")
        if not host or not port.isdigit():
            return  # "local", "auto": Ray answers at once
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as error:
            raise CnnTreeError(f"--ray {self.address}: no Ray cluster answers there ({error.strerror or error}); "
                               "start one with `ray start --head`, or use --ray local") from None

    def run(self, jobs, printer):
        self.check()  # also when a classifier is fitted directly, not through run_experiment
        import ray
        from ray.util.queue import Queue

        started_here = not ray.is_initialized()
        if started_here:
            try:
                ray.init(address=None if self.address == "local" else self.address, include_dashboard=False,
                         log_to_driver=False, logging_level=logging.ERROR)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise CnnTreeError(f"--ray {self.address}: cannot connect to the Ray cluster "
                                   f"({str(error).splitlines()[0]})") from None
        try:
            workers = min(self.jobs or len(jobs), len(jobs))
            cpus = share(int(ray.cluster_resources().get("CPU", 1)), workers)
            printer(f"training {len(jobs)} networks as Ray tasks on {self.address}, {cpus} CPU{'s' * (cpus > 1)} each")
            lines = Queue()
            task = ray.remote(num_cpus=cpus, max_retries=0)(worker)
            refs = {task.remote(job, lines, cpus): i for i, job in enumerate(jobs)}
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
                drain(lines, printer)
                for ref in done:
                    try:
                        state, blob = ray.get(ref)
                    except ray.exceptions.RayTaskError as error:
                        if isinstance(error.cause, CnnTreeError):
                            raise error.cause from None
                        raise CnnTreeError(f"a Ray training task failed: {error.cause!r}") from None
                    yield refs[ref], model_from_bytes(blob), state
            drain(lines, printer)
        finally:
            if started_here:
                ray.shutdown()


def make_runner(jobs: int = 1, ray: str | None = None) -> Runner:
    """The runner for ``--jobs N`` / ``--ray ADDRESS``."""
    if ray:
        return RayTasks(ray, jobs if jobs > 1 else None)
    return ProcessPool(jobs) if jobs > 1 else Sequential()
