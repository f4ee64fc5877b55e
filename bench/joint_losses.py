"""Benchmark: which terms of the joint loss keep a tree started from the shipped small network
stable, and what makes the nodes' own cross-entropy usable.

    python bench/joint_losses.py --data fer2013.csv.gz [--faces 6400] [--passes 3]
        [--runs "0,0,1" "1,0,1" "1,0.5,1" "1,0.5,1 batchnorm=frozen" "1,0.5,1 trunk_lr=0.1"
                "1,0.5,1 mix=balanced" ...] [--json bench/joint_losses.json]

The moravcik tree as class-read heads on the shipped small network's trunk
(``trees/moravcik_shared_default.json``: before training it is exactly that network) is trained
jointly (``training.finetune``'s model, targets and compilation, Adam 1e-4, batch 64) on ``--faces``
Training faces for ``--passes`` passes, once per run. A run is the loss weights ``path,nodes,flat``
and optionally ``batchnorm=frozen`` (BatchNormalization in inference mode, its statistics fixed),
``trunk_lr=F`` (the trunk at F times the heads' rate) and ``mix=balanced`` (the faces resampled to
equal class counts instead of the natural mix). After every pass: the path product's and the flat
head's accuracy on 1,200 PublicTest faces (PrivateTest is left alone), the path's accuracy in
training mode (batch statistics) on 256 of them (a gap says BatchNormalization's moving statistics
no longer describe the features), and the root-mean-square of the trunk's output on them (how far
the features' scale drifts).
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
RUNS = ["0,0,1", "1,0,1", "1,0.5,1", "0,0.5,1", "1,0.5,1 mix=balanced", "1,0.5,1 batchnorm=frozen",
        "1,0,1 batchnorm=frozen", "1,0.5,1 trunk_lr=0.1", "1,0,1 trunk_lr=0.1", "1,1,1 trunk_lr=0.1",
        "1,0.5,1 batchnorm=frozen trunk_lr=0.1", "1,0.5,0 trunk_lr=0.1"]


def parse_run(given: str) -> dict:
    """``"1,0.5,1 batchnorm=frozen"`` as the finetune settings it changes and the class mix."""
    weights, *options = given.split()
    path, nodes, flat = (float(v) for v in weights.split(","))
    run = {"loss": {"path": path, "nodes": nodes, "flat": flat}, "mix": "natural"}
    for option in options:
        key, value = option.split("=")
        run[key] = float(value) if key == "trunk_lr" else value
    return run


def run(settings, data, args, flat_file):
    import keras
    import numpy as np

    from cnntree.nets.train import as_input
    from cnntree.nets.warmstart import weighted_layers
    from cnntree.spec import parse_spec
    from cnntree.training.finetune import compile_joint, joint_model, joint_targets
    from cnntree.training.flatstart import FlatStart
    from cnntree.training.trunk import trunk_networks

    rng = np.random.default_rng(0)
    train = rng.permutation(np.flatnonzero(data.splits == "Training"))[:args.faces]
    if settings["mix"] == "balanced":  # the same number of faces, every class equally often
        by_class = [train[data.labels[train] == c] for c in range(len(data.classes))]
        train = rng.permutation(np.concatenate([rng.choice(f, args.faces // len(by_class)) for f in by_class]))
    test = np.flatnonzero(data.splits == "PublicTest")[:1200]
    x, y, xt, yt = as_input(data.images[train]), data.labels[train], as_input(data.images[test]), data.labels[test]
    raw = json.loads((ROOT / "trees" / "moravcik_shared_default.json").read_text())
    raw["finetune"] = {**raw["finetune"], **{k: v for k, v in settings.items() if k != "mix"}}
    spec = parse_spec(raw)
    keras.utils.set_random_seed(0)
    columns, head = trunk_networks(spec, FlatStart(flat_file, spec.classes), print)
    networks = [columns[n.id].model for n in spec.nodes]
    model = joint_model(spec, networks, head)
    compile_joint(model, spec, networks, flat=head is not None)
    # the trunk's output: what the first node's output layer reads
    trunk = keras.Model(model.inputs, weighted_layers(networks[0])[-1].input)

    def measure():
        out = model.predict(xt, verbose=0)
        batch = np.asarray(model(xt[:256], training=True)[0])
        return {"path": float((out[0].argmax(1) == yt).mean()),
                "flat_head": float((out[-1].argmax(1) == yt).mean()) if head is not None else None,
                "path_training_mode": float((batch.argmax(1) == yt[:256]).mean()),
                "trunk_rms": float(np.sqrt(np.mean(np.square(trunk.predict(xt[:256], verbose=0)))))}

    passes = [{"pass": 0, **measure()}]
    for k in range(1, args.passes + 1):
        history = model.fit(x, joint_targets(spec, y, head is not None), batch_size=64, epochs=1, verbose=0,
                            shuffle=True)
        passes.append({"pass": k, "train_loss": history.history["loss"][-1], **measure()})
        print(f"  {label(settings):40s} pass {k}: path {passes[-1]['path']:.4f} (training mode "
              f"{passes[-1]['path_training_mode']:.4f}), trunk output RMS {passes[-1]['trunk_rms']:.3g}, "
              f"train loss {passes[-1]['train_loss']:.3g}", flush=True)
    return passes


def label(settings: dict) -> str:
    loss = settings["loss"]
    extra = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in settings.items()
             if k not in ("loss", "mix")] + ([f"mix={settings['mix']}"] if settings["mix"] != "natural" else [])
    return " ".join([f"{loss['path']:g},{loss['nodes']:g},{loss['flat']:g}", *extra])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--faces", type=int, default=6400)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--runs", nargs="+", default=RUNS,
                        help='loss weights path,nodes,flat, then options: "1,0.5,1 batchnorm=frozen trunk_lr=0.1"')
    parser.add_argument("--json", default=str(ROOT / "bench" / "joint_losses.json"))
    args = parser.parse_args()
    from cnntree import load_model
    from cnntree.data import load_faces

    data = load_faces(args.data)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        flat_file = Path(folder) / "flat.keras"
        load_model("small").keras_models()["net"].save(flat_file)
        for given in args.runs:
            settings = parse_run(given)
            rows.append({"run": label(settings), "settings": settings, "passes": run(settings, data, args, flat_file)})
    print(f"{'run':40s} " + " ".join(f"{'pass ' + str(k):>13s}" for k in range(args.passes + 1))
          + "   (path accuracy / trunk output RMS, 1,200 PublicTest faces)")
    for row in rows:
        print(row["run"].ljust(40) + " " + " ".join(f"{p['path']:.3f}/{p['trunk_rms']:.3g}".rjust(13)
                                                   for p in row["passes"]))
    Path(args.json).write_text(json.dumps({"command": "python bench/joint_losses.py " + " ".join(sys.argv[1:]),
                                           "faces": args.faces, "passes": args.passes, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
