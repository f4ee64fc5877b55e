"""Benchmark: training images/s of cnntree's trainer vs a plain ``keras.Model.fit``.

    python bench/throughput.py [--images 4096] [--batch 64] [--rounds 2] [--workers 2] [--json bench/throughput.json]

Same model (mini-Xception), batch, data and machine, in one process, the two sides alternating
``--rounds`` times (the machine is noisy). cnntree's side is ``train_network`` as ``cnntree
train`` runs it (per-epoch checkpoint, schedule, progress), once without augmentation and once
with the reference's augmentation set (a) on each engine (``augment.engine``: albumentations face by
face, ``batch`` in keras.ops), and with albumentations in ``--workers`` loader processes
(``train.workers``). Two more sides time the moravcik tree's joint training step (the tree as one
model, ``training.finetune``, no augmentation): its nodes as heads on one shared trunk, and as four
separate networks; their ratio to the plain fit is the tree's wall time as a multiple of its flat
network's. The first epoch of each run (tracing) is not timed; ``bench/timing.py`` holds the sides.
Targets: cnntree with augmentation >= 1.0x the plain fit without it on a CPU, >= 0.9x on a
GPU; a tree's training <= 2x its flat network's.
"""

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="loader processes of the last side")
    parser.add_argument("--json", default="bench/throughput.json")
    args = parser.parse_args()
    import keras
    from timing import AUGMENT_A, cnntree_speed, joint_tree_speed, machine_line, plain_speed, sample_faces

    import cnntree  # noqa: F401  the CPU guard, before TensorFlow loads
    from cnntree.spec.sections import TRAIN

    train, val = sample_faces(args.images)
    train_cfg = TRAIN.parse({"epochs": 2, "batch_size": args.batch, "seed": 0}, "train")
    loader_cfg = {**train_cfg, "workers": args.workers}
    sides = {"plain keras fit": lambda: plain_speed(train, val, train_cfg),
             "cnntree, no augmentation": lambda: cnntree_speed(train, val, train_cfg, {}),
             "cnntree, (a), albumentations": lambda: cnntree_speed(train, val, train_cfg, AUGMENT_A),
             "cnntree, (a), batch engine": lambda: cnntree_speed(train, val, train_cfg, {**AUGMENT_A, "engine": "batch"}),
             f"cnntree, (a), {args.workers} processes": lambda: cnntree_speed(train, val, loader_cfg, AUGMENT_A),
             "moravcik joint, shared trunk": lambda: joint_tree_speed(train, val, args.batch, shared=True),
             "moravcik joint, 4 networks": lambda: joint_tree_speed(train, val, args.batch, shared=False)}
    try:
        import albumentations  # noqa: F401
    except ImportError:  # a GPU machine may lack it: time the other sides
        sides = {name: run for name, run in sides.items() if "albumentations" not in name and "processes" not in name}
        print("albumentations is not installed: its sides are not timed", flush=True)
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
    machine = f"{machine_line()}, Keras {keras.__version__} on {keras.backend.backend()}"
    print(f"mini-Xception, batch {args.batch}, {args.images} images per epoch; {machine}; target: augmented cnntree "
          ">= 1.0x plain (CPU), >= 0.9x (GPU)")
    Path(args.json).write_text(json.dumps({"machine": machine, "batch": args.batch, "images": args.images,
                                           "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
