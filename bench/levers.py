"""Benchmark: the training-speed levers of a machine, one at a time against the same baseline.

    python bench/levers.py [--images 2048] [--rounds 2] [--json bench/levers.json]

Each setting trains mini-Xception in its own Python process, because thread counts, oneDNN and the
Keras backend are fixed before the framework loads: a plain ``keras.Model.fit`` without
augmentation and cnntree's ``train_network`` with the reference's augmentation (a), both timed on
their second epoch (the first traces). Levers: batch size, TensorFlow intra-/inter-op threads,
oneDNN off, mixed bfloat16, loader processes, the Keras backend (JAX and PyTorch where installed:
a missing one is a row that says so). The best of ``--rounds`` runs counts (the machine is noisy).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (lever, setting, environment, options): options are the child's batch, policy and workers
BASELINE = {"batch": 64, "policy": "float32", "workers": 1}
LEVERS = [
    ("baseline", "TF defaults, batch 64, float32", {}, {}),
    ("batch size", "32", {}, {"batch": 32}),
    ("batch size", "128", {}, {"batch": 128}),
    ("batch size", "256", {}, {"batch": 256}),
    ("threads", "intra 1, inter 1", {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}, {}),
    ("threads", "intra 2, inter 1", {"TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "1"}, {}),
    ("threads", "intra 4, inter 2", {"TF_NUM_INTRAOP_THREADS": "4", "TF_NUM_INTEROP_THREADS": "2"}, {}),
    ("oneDNN", "off", {"TF_ENABLE_ONEDNN_OPTS": "0"}, {}),
    ("precision", "mixed bfloat16", {}, {"policy": "mixed_bfloat16"}),
    ("loader processes", "2", {}, {"workers": 2}),
    ("backend", "jax", {"KERAS_BACKEND": "jax"}, {}),
    ("backend", "torch", {"KERAS_BACKEND": "torch"}, {}),
]
MODULES = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}


def child(options: dict, images: int) -> dict:
    """One setting's two measurements in this process (its environment already set)."""
    import keras
    from timing import AUGMENT_A, cnntree_speed, plain_speed, sample_faces

    import cnntree  # noqa: F401  the CPU guard, before TensorFlow loads
    from cnntree.spec.sections import TRAIN

    keras.mixed_precision.set_global_policy(options["policy"])
    train, val = sample_faces(images)
    cfg = TRAIN.parse({"epochs": 2, "batch_size": options["batch"], "seed": 0, "workers": options["workers"]}, "train")
    return {"plain": plain_speed(train, val, cfg), "cnntree": cnntree_speed(train, val, cfg, AUGMENT_A),
            "backend": keras.backend.backend()}


def measure(env: dict, options: dict, images: int) -> dict:
    """Run one setting in a fresh process; its JSON result, or the reason it could not run."""
    backend = env.get("KERAS_BACKEND", "tensorflow")
    if importlib.util.find_spec(MODULES[backend]) is None:
        return {"skipped": f"{backend} is not installed here"}
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'bench')!r}); "
            f"import levers; print('RESULT ' + json.dumps(levers.child({options!r}, {images})))")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
                          capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"skipped": (done.stderr.strip().splitlines() or ["failed"])[-1][:200]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="levers to run (default: all), e.g. 'batch size' backend")
    parser.add_argument("--json", default=str(ROOT / "bench" / "levers.json"))
    args = parser.parse_args()
    rows = []
    print(f"{'lever':18s} {'setting':32s} {'plain fit img/s':>16s} {'cnntree (a) img/s':>18s} {'vs baseline':>12s}",
          flush=True)
    for lever, setting, env, options in LEVERS:
        if args.only and lever not in args.only and lever != "baseline":
            continue
        runs = [measure(env, {**BASELINE, **options}, args.images) for _ in range(args.rounds)]
        done = [r for r in runs if "skipped" not in r]
        row = {"lever": lever, "setting": setting, "env": env, "options": {**BASELINE, **options}}
        if not done:
            row["skipped"] = runs[0]["skipped"]
            print(f"{lever:18s} {setting:32s} {'-':>16s} {'-':>18s}   ({row['skipped']})", flush=True)
        else:
            row.update(plain=max(r["plain"] for r in done), cnntree=max(r["cnntree"] for r in done),
                       all=done)
            base = rows[0] if rows else row
            row["vs_baseline"] = row["cnntree"] / base["cnntree"]
            print(f"{lever:18s} {setting:32s} {row['plain']:16.1f} {row['cnntree']:18.1f} "
                  f"{row['vs_baseline']:11.2f}x", flush=True)
        rows.append(row)
    from timing import machine_line

    machine = f"{machine_line()}, Python {platform.python_version()}"
    Path(args.json).write_text(json.dumps({"machine": machine, "images": args.images, "rounds": args.rounds,
                                           "command": "python bench/levers.py " + " ".join(sys.argv[1:]),
                                           "rows": rows}, indent=2) + "\n")
    print(f"mini-Xception, {args.images} images per epoch, best of {args.rounds}; {machine}; written {args.json}")


if __name__ == "__main__":
    main()
