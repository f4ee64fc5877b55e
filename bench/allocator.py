"""Benchmark: where training's memory comes from (``cnntree.nets.allocator``): malloc with freed
memory reused (as cnntree trains), malloc as TensorFlow's generator dataset leaves it, or
TensorFlow's own pool.

    python bench/allocator.py [--images 1024] [--batch 32] [--rounds 2] [--json bench/allocator.json]

TensorFlow's first generator dataset sets glibc's trim threshold, which pins malloc's mmap
threshold at 128 KB; cnntree sets glibc's own limits back when each epoch begins. Buffers over
malloc's 32 MB mmap ceiling are still mapped afresh, unless TensorFlow keeps its tensors in its own
pool (``TF_CPU_ALLOCATOR_USE_BFC=true``; with oneDNN on it pools already). Each side trains one
network with ``train_network`` for two epochs in a fresh process (the settings are process-wide):
"malloc, reused" as cnntree trains, "malloc, not reused" with cnntree's call disabled, "pool" with
TensorFlow's pool. The second epoch is measured: images/s, the process's CPU seconds (user and
system) and its minor page faults; and the process's peak memory (resident set). The sides
alternate ``--rounds`` times (the machine is noisy); the table shows each side's median.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import cnntree  # noqa: E402, F401  the CPU guard's setting, inherited by every side's process

MODELS = {"mini_xception": {"name": "mini_xception", "width": 1.0, "l2": 0.01},  # the small default's network
          "vgg": {"name": "vgg", "blocks": 4}}  # trees/single_vgg.json's network (the default)
SIDES = {"malloc, reused": ("false", True), "malloc, not reused": ("false", False), "pool": ("true", True)}


def child(model: str, reuse: bool, images: int, batch: int) -> dict:
    """One side in this process: two epochs, the second measured."""
    import tempfile

    import keras
    from timing import sample_faces

    import cnntree.nets.train as trainer
    from cnntree.spec.sections import AUGMENT, TRAIN

    if not reuse:
        trainer.reuse_freed_memory = lambda: False
    marks = []

    def mark(epoch, logs):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        marks.append((time.perf_counter(), usage.ru_utime, usage.ru_stime, usage.ru_minflt))

    train, val = sample_faces(images)
    settings = {"model": MODELS[model], "augment": AUGMENT.parse({}, "augment"),
                "train": TRAIN.parse({"epochs": 2, "batch_size": batch, "seed": 0}, "train")}
    with tempfile.TemporaryDirectory() as folder:
        trainer.train_network(settings, 7, train, val, Path(folder), printer=lambda *_: None,
                              callbacks=[keras.callbacks.LambdaCallback(on_epoch_begin=mark, on_epoch_end=mark)])
    (wall0, user0, sys0, faults0), (wall1, user1, sys1, faults1) = marks[2], marks[3]
    return {"images_per_s": images / (wall1 - wall0), "user_s": user1 - user0, "system_s": sys1 - sys0,
            "minor_faults": faults1 - faults0, "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", default="bench/allocator.json")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "REUSE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1] == "1", args.images, args.batch)))
        return
    from timing import machine_line

    results = {(model, side): [] for model in MODELS for side in SIDES}
    for _ in range(args.rounds):
        for model, side in results:
            pool, reuse = SIDES[side]
            done = subprocess.run([sys.executable, __file__, "--child", model, str(int(reuse)), "--images",
                                   str(args.images), "--batch", str(args.batch)],
                                  capture_output=True, text=True, check=True,
                                  env={**os.environ, "TF_CPU_ALLOCATOR_USE_BFC": pool})
            results[(model, side)].append(json.loads(done.stdout.splitlines()[-1]))
    rows = []
    print(f"{'network':14s} {'memory':>18s} {'images/s':>9s} {'user s':>7s} {'system s':>9s} {'minor faults':>13s} "
          f"{'peak MB':>8s}")
    for (model, side), runs in results.items():
        row = {"network": model, "memory": side, "runs": runs,
               **{key: statistics.median(run[key] for run in runs)
                  for key in ("images_per_s", "user_s", "system_s", "minor_faults", "peak_memory_mb")}}
        rows.append(row)
        print(f"{model:14s} {side:>18s} {row['images_per_s']:9.1f} {row['user_s']:7.2f} "
              f"{row['system_s']:9.2f} {row['minor_faults']:13,.0f} {row['peak_memory_mb']:8.0f}")
    report = {"machine": machine_line(), "images": args.images, "batch": args.batch, "rounds": args.rounds,
              "command": "python bench/allocator.py " + " ".join(sys.argv[1:]), "rows": rows}
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.json}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
