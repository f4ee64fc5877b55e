"""What the speed benchmarks time, in one place: mini-Xception on sample faces, the second epoch of
each run (the first traces), as a plain ``keras.Model.fit``, as cnntree's ``train_network`` and as a
tree's joint step (``training.finetune``). ``throughput.py`` and ``levers.py`` both measure with it."""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AUGMENT_A = {"rotation": 10, "width_shift": 0.1, "height_shift": 0.1, "zoom": 0.1, "h_flip": True}
MODEL = {"name": "mini_xception", "width": 1.0, "l2": 0.01}


def cpu_model() -> str:
    """The CPU's model name, family and model, and whether it has AVX-512 (``/proc/cpuinfo``), for
    the JSON of every speed benchmark: ``AMD EPYC (family 25, model 17, AVX-512)``."""
    import platform

    from cnntree.cpu import cpu_field, cpu_flags, read_cpuinfo

    cpuinfo = read_cpuinfo()
    if not cpuinfo:
        return platform.processor() or platform.machine()
    avx512 = "AVX-512" if "avx512f" in cpu_flags(cpuinfo) else "no AVX-512"
    return (f"{cpu_field(cpuinfo, 'model name') or platform.machine()} (family {cpu_field(cpuinfo, 'cpu family') or '?'}, "
            f"model {cpu_field(cpuinfo, 'model') or '?'}, {avx512})")


def machine_line() -> str:
    """CPU model, cores and the oneDNN limit in force (the CPU guard's, or the user's)."""
    import os

    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "all") if os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "0" else "off"
    return f"{cpu_model()}, {os.cpu_count()} cores, oneDNN ISA {isa}"


def sample_faces(images: int, seed: int = 0):
    """``images`` training faces drawn from the bundled sample, and 256 validation faces."""
    import numpy as np

    from cnntree.data import load_faces

    data = load_faces("sample")
    pick = np.random.default_rng(seed).choice(len(data), size=images, replace=True)
    return (data.images[pick], data.labels[pick]), (data.images[:256], data.labels[:256])


def epoch_timer(times: list):
    """A callback appending each epoch's start and end times to ``times``."""
    import keras

    return keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: times.append(time.perf_counter()),
                                          on_epoch_end=lambda epoch, logs: times.append(time.perf_counter()))


def second_epoch_speed(images: int, times: list) -> float:
    """Images per second of the second timed epoch."""
    return images / (times[3] - times[2])


def plain_speed(train, validation, train_cfg) -> float:
    """A plain ``keras.Model.fit`` of in-memory arrays, no augmentation: the speed to reach."""
    import keras

    from cnntree.nets.models import create_model
    from cnntree.nets.schedules import make_optimizer
    from cnntree.nets.train import as_input

    keras.utils.set_random_seed(0)
    model = create_model(**MODEL)
    model.compile(optimizer=make_optimizer(train_cfg["optimizer"]), loss="categorical_crossentropy")
    times = []
    model.fit(as_input(train[0]), keras.utils.to_categorical(train[1], 7), batch_size=train_cfg["batch_size"],
              epochs=2, verbose=0, validation_data=(as_input(validation[0]), keras.utils.to_categorical(validation[1], 7)),
              callbacks=[epoch_timer(times)])
    return second_epoch_speed(len(train[1]), times)


def cnntree_speed(train, validation, train_cfg, augment: dict) -> float:
    """cnntree's trainer as ``cnntree train`` runs one network (checkpoint, schedule, progress)."""
    from cnntree.nets.train import train_network
    from cnntree.spec.sections import AUGMENT

    settings = {"model": MODEL, "augment": AUGMENT.parse(augment, "augment"), "train": train_cfg}
    times = []
    with tempfile.TemporaryDirectory() as folder:
        train_network(settings, 7, train, validation, Path(folder), callbacks=[epoch_timer(times)],
                      printer=lambda *_: None)
    return second_epoch_speed(len(train[1]), times)


def joint_tree_speed(train, validation, batch: int, shared: bool) -> float:
    """The moravcik tree's joint training step (``training.finetune``) over mini-Xception nodes: as
    heads on one shared trunk, or as four separate networks."""
    from cnntree.nets.models import create_model
    from cnntree.spec import parse_spec
    from cnntree.training.finetune import finetune
    from cnntree.training.trunk import trunk_networks

    raw = json.loads((ROOT / "trees" / "moravcik_shared.json").read_text())
    raw.pop("init")
    raw["trunk"]["shared"] = shared
    raw["finetune"].update(epochs=2, batch_size=batch)
    raw["defaults"]["model"] = MODEL
    spec = parse_spec(raw)
    if shared:
        columns, _ = trunk_networks(spec, None, print)
        networks = [columns[node.id].model for node in spec.nodes]
    else:
        networks = [create_model(n_outputs=len(node.groups), **MODEL) for node in spec.nodes]
    times = []
    finetune(spec, networks, *train, validation, network_run=lambda stage: contextlib.nullcontext([epoch_timer(times)]),
             printer=lambda *_: None)
    return second_epoch_speed(len(train[1]), times)
