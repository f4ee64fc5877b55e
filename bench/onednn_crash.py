"""The oneDNN crash on AVX-512 CPUs, reduced to one layer: a 1x1 convolution with stride 2 from 8 to
16 channels (mini-Xception's first shortcut), trained on CPU with TensorFlow's oneDNN kernels; then
the whole smoke training (``cnntree train trees/single_mini_xception.json --quick``), ``--trainings``
times per setting, which crashes under settings the one layer survives; and the seconds of one
mini-Xception epoch over 4,096 faces under each setting (what a safe setting costs).

    python bench/onednn_crash.py [--steps 400] [--batch 13] [--trainings 3]

Each setting trains the layer in a child process (a native crash there is an exit status, not the
end of this script), first with oneDNN's AVX-512 kernels (``TF_ENABLE_ONEDNN_OPTS=1``: the user's
own setting, which cnntree's CPU guard leaves alone), then with ``ONEDNN_MAX_CPU_ISA=AVX2``, then
with ``ONEDNN_MAX_CPU_ISA=AVX`` (what the guard applies on an AMD), then with oneDNN off (what it
applies on an Intel). Prints a table and writes JSON.

``ONEDNN_VERBOSE=1`` on the full training (``cnntree train trees/single_mini_xception.json --data
fer2013.csv.gz --epochs 1``) showed the last primitives before ``double free or corruption``: the
backward pass of this convolution (``jit_1x1:avx512_core, backward_weights, mb13_ic8oc16_ih44oh22
kh1sh2``, weights in a padded ``ABcd16b16a`` layout), on the epoch's last, partial batch of 13 faces.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import numpy as np, keras
inputs = keras.Input((44, 44, 8))
outputs = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(16, 1, strides=2)(inputs))
model = keras.Model(inputs, outputs)
model.compile(optimizer="adam", loss="mse")
rng = np.random.default_rng(0)
x, y = rng.normal(size=({batch}, 44, 44, 8)).astype("float32"), rng.normal(size=({batch}, 16)).astype("float32")
for _ in range({steps}):
    model.train_on_batch(x, y)
print("finished")
"""

SETTINGS = {"oneDNN AVX-512 (TF_ENABLE_ONEDNN_OPTS=1)": {"TF_ENABLE_ONEDNN_OPTS": "1"},
            "ONEDNN_MAX_CPU_ISA=AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
            "ONEDNN_MAX_CPU_ISA=AVX (the guard on AMD)": {"ONEDNN_MAX_CPU_ISA": "AVX"},
            "oneDNN off (the guard on Intel and others)": {"TF_ENABLE_ONEDNN_OPTS": "0"}}
ROOT = Path(__file__).resolve().parents[1]


def outcome_of(done) -> str:
    """How a child process ended: finished, killed by a signal, or its last line."""
    tail = (done.stdout + done.stderr).strip().splitlines()
    if done.returncode < 0:
        return f"killed by {signal.Signals(-done.returncode).name}"
    if done.returncode in (134, 139):  # the shell's way of saying SIGABRT, SIGSEGV
        return f"killed by {signal.Signals(done.returncode - 128).name}"
    return "finished" if done.returncode == 0 else (tail[-1] if tail else "no output")


SPEED = """
import time, numpy as np, keras
from cnntree.nets.models import create_model
model = create_model("mini_xception", n_outputs=7)
model.compile(optimizer="adam", loss="categorical_crossentropy")
rng = np.random.default_rng(0)
x, y = rng.uniform(0, 255, (4096, 48, 48, 1)).astype("float32"), keras.utils.to_categorical(np.arange(4096) % 7, 7)
model.fit(x[:512], y[:512], batch_size=32, epochs=1, verbose=0)
started = time.time()
model.fit(x, y, batch_size=32, epochs=1, verbose=0)
print(time.time() - started)
"""


def epoch_seconds(env: dict) -> float | None:
    """Seconds of one mini-Xception epoch over 4,096 faces (batch 32) under ``env``; None if it crashed."""
    done = subprocess.run([sys.executable, "-c", SPEED], env=env, capture_output=True, text=True, cwd=ROOT)
    return float(done.stdout.split()[-1]) if done.returncode == 0 and done.stdout.split() else None


def trainings(env: dict, count: int) -> list[str]:
    """The outcome of ``count`` smoke trainings, each in a fresh folder."""
    import tempfile

    outcomes = []
    for _ in range(count):
        with tempfile.TemporaryDirectory() as folder:
            done = subprocess.run([sys.executable, "-m", "cnntree.cli", "train",
                                   str(ROOT / "trees" / "single_mini_xception.json"), "--quick"],
                                  env=env, cwd=folder, capture_output=True, text=True)
            outcomes.append(outcome_of(done))
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=13)
    parser.add_argument("--trainings", type=int, default=3, help="smoke trainings per setting (0: none)")
    parser.add_argument("--json", default=str(Path(__file__).with_name("onednn_crash.json")))
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from timing import cpu_model

    base = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",
                                                              "TF_ENABLE_ONEDNN_OPTS")}
    base.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    rows = []
    print(f"{'setting':45s} {'exit':>5s} {'seconds':>8s}  {'one layer':40s}  {'trainings crashed':15s} "
          "epoch of 4,096 faces")
    for name, extra in SETTINGS.items():
        started = time.time()
        done = subprocess.run([sys.executable, "-c", CHILD.format(batch=args.batch, steps=args.steps)],
                              env={**base, **extra}, capture_output=True, text=True)
        outcome = outcome_of(done)
        runs = trainings({**base, **extra}, args.trainings)
        crashed = sum(o != "finished" for o in runs)
        speed = epoch_seconds({**base, **extra})
        rows.append({"setting": name, "env": extra, "exit": done.returncode, "seconds": time.time() - started,
                     "outcome": outcome, "trainings": runs, "epoch_seconds_4096_faces": speed})
        print(f"{name:45s} {done.returncode:5d} {rows[-1]['seconds']:8.1f}  {outcome[:40]:40s}  "
              f"{crashed}/{len(runs):<15d} {'crashed' if speed is None else f'{speed:.1f} s'}", flush=True)
    Path(args.json).write_text(json.dumps({"cpu": cpu_model(), "steps": args.steps, "batch": args.batch,
                                           "command": "python bench/onednn_crash.py " + " ".join(sys.argv[1:]),
                                           "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
