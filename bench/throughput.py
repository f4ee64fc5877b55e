"""Benchmark: training images/s of cnntree's trainer vs a plain ``keras.Model.fit``.

    python bench/throughput.py [--images 4096] [--batch 64] [--rounds 2] [--workers 2] [--json bench/throughput.json]

Same model (mini-Xception), batch, data and machine, in one process, the two sides alternating
``--rounds`` times (the machine is noisy). cnntree's side is ``train_network`` as ``cnntree
train`` runs it (per-epoch checkpoint, schedule, progress), once without augmentation and once
with the reference's augmentation set (a) on each engine (``augment.engine``: albumentations face by
face, ``batch`` in keras.ops), and with albumentations in ``--workers`` loader processes
(``train.workers``). The first epoch of each run (tracing) is not timed.
Target (issue 16): cnntree with augmentation >= 1.0x the plain fit without it on a CPU, >= 0.9x on a GPU.
"""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

AUGMENT_A = {"rotation": 10, "width_shift": 0.1, "height_shift": 0.1, "zoom": 0.1, "h_flip": True}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="loader processes of the last side")
    parser.add_argument("--json", default="bench/throughput.json")
    args = parser.parse_args()
    import keras
    import numpy as np

    from cnntree.data import load_faces
    from cnntree.nets.models import create_model
    from cnntree.nets.schedules import make_optimizer
    from cnntree.nets.train import as_input, train_network
    from cnntree.spec.sections import AUGMENT, TRAIN

    data = load_faces("sample")
    rng = np.random.default_rng(0)
    pick = rng.choice(len(data), size=args.images, replace=True)
    faces, labels = data.images[pick], data.labels[pick]
    val = (data.images[:256], data.labels[:256])
    train_cfg = TRAIN.parse({"epochs": 2, "batch_size": args.batch, "seed": 0}, "train")
    loader_cfg = {**train_cfg, "workers": args.workers}

    def plain():
        keras.utils.set_random_seed(0)
        model = create_model("mini_xception")
        model.compile(optimizer=make_optimizer(train_cfg["optimizer"]), loss="categorical_crossentropy",
                      metrics=["accuracy"])
        x, y = as_input(faces), keras.utils.to_categorical(labels, 7)
        validation = (as_input(val[0]), keras.utils.to_categorical(val[1], 7))
        times = []
        timer = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: times.append(time.perf_counter()),
                                               on_epoch_end=lambda epoch, logs: times.append(time.perf_counter()))
        model.fit(x, y, batch_size=args.batch, epochs=2, verbose=0, validation_data=validation, callbacks=[timer])
        return args.images / (times[3] - times[2])  # the second epoch, as on cnntree's side

    def cnntree(augment, train=train_cfg):
        settings = {"model": {"name": "mini_xception", "width": 1.0, "l2": 0.01},
                    "augment": AUGMENT.parse(augment, "augment"), "train": train}
        times = []
        with tempfile.TemporaryDirectory() as folder:
            train_network(settings, 7, (faces, labels), val, Path(folder),
                          callbacks=[keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: times.append(
                              time.perf_counter()), on_epoch_end=lambda epoch, logs: times.append(time.perf_counter()))],
                          printer=lambda *_: None)
        return args.images / (times[3] - times[2])  # the second epoch

    sides = {"plain keras fit": plain, "cnntree, no augmentation": lambda: cnntree({}),
             "cnntree, (a), albumentations": lambda: cnntree(AUGMENT_A),
             "cnntree, (a), batch engine": lambda: cnntree({**AUGMENT_A, "engine": "batch"}),
             f"cnntree, (a), {args.workers} processes": lambda: cnntree(AUGMENT_A, loader_cfg)}
    results = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, run in sides.items():
            results[name].append(run())
    base = max(results["plain keras fit"])
    print(f"{'trainer':30s} {'images/s (best)':>16s} {'vs plain':>9s}")
    rows = []
    for name, values in results.items():
        rows.append({"trainer": name, "images_per_s": max(values), "all": values, "ratio": max(values) / base})
        print(f"{name:30s} {max(values):16.1f} {max(values) / base:8.2f}x")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Keras {keras.__version__} on {keras.backend.backend()}"
    print(f"mini-Xception, batch {args.batch}, {args.images} images per epoch; {machine}; target: augmented cnntree "
          ">= 1.0x plain (CPU), >= 0.9x (GPU)")
    Path(args.json).write_text(json.dumps({"machine": machine, "batch": args.batch, "images": args.images,
                                           "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
