"""Benchmark: which terms of the joint loss keep a tree started from the shipped default stable.

    python bench/joint_losses.py --data fer2013.csv.gz [--faces 6400] [--passes 3]
        [--weights 0,0,1 1,0,1 1,0.5,1 0,0.5,1] [--json bench/joint_losses.json]

The moravcik tree as class-read heads on the shipped default's trunk (``trees/moravcik_shared_default.json``:
before training it is exactly the default network) is trained jointly (``compose.finetune``'s model and
targets, Adam 1e-4, batch 64) on ``--faces`` Training faces for ``--passes`` passes, once per loss
weighting ``path,nodes,flat``. After every pass: the path product's and the flat head's accuracy on
1,200 PublicTest faces (PrivateTest is left alone), in inference mode and, for the flat head, in
training mode (batch statistics) on 256 of them: a gap between the two says BatchNormalization's
moving statistics no longer describe the features.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]


def run(weights, data, args, flat_file):
    import keras
    import numpy as np

    from cnntree import CnnTreeClassifier
    from cnntree.compose.finetune import joint_model, joint_targets
    from cnntree.compose.flatstart import FlatStart
    from cnntree.nets.schedules import make_optimizer
    from cnntree.nets.train import as_input
    from cnntree.spec import load_spec
    from cnntree.spec.sections import OPTIMIZER

    train = np.random.default_rng(0).permutation(np.flatnonzero(data.splits == "Training"))[:args.faces]
    test = np.flatnonzero(data.splits == "PublicTest")[:1200]
    x, y, xt, yt = as_input(data.images[train]), data.labels[train], as_input(data.images[test]), data.labels[test]
    spec = load_spec(ROOT / "trees" / "moravcik_shared_default.json")
    keras.utils.set_random_seed(0)
    clf = CnnTreeClassifier(spec, printer=lambda *_: None)
    networks, head = clf._shared_networks(FlatStart(flat_file, spec.classes))
    model = joint_model(spec, [networks[n.id] for n in spec.nodes], head)
    path, nodes, flat = weights
    model.compile(optimizer=make_optimizer(OPTIMIZER.parse({"name": "adam", "lr": 1e-4}, "optimizer")),
                  loss=["categorical_crossentropy"] * (len(spec.nodes) + 2),
                  loss_weights=[path] + [nodes] * len(spec.nodes) + [flat])

    def measure():
        out = model.predict(xt, verbose=0)
        batch = np.asarray(model(xt[:256], training=True)[-1])
        return {"path": float((out[0].argmax(1) == yt).mean()), "flat_head": float((out[-1].argmax(1) == yt).mean()),
                "flat_head_training_mode": float((batch.argmax(1) == yt[:256]).mean())}

    passes = [{"pass": 0, **measure()}]
    for k in range(1, args.passes + 1):
        history = model.fit(x, joint_targets(spec, y, True), batch_size=64, epochs=1, verbose=0, shuffle=True)
        passes.append({"pass": k, "train_loss": history.history["loss"][-1],
                       "flat_head_train_loss": history.history["_flat_probabilities_loss"][-1], **measure()})
        print(f"  {','.join(map(str, weights)):12s} pass {k}: path {passes[-1]['path']:.4f}  flat head "
              f"{passes[-1]['flat_head']:.4f}  (training mode {passes[-1]['flat_head_training_mode']:.4f})  "
              f"flat-head train loss {passes[-1]['flat_head_train_loss']:.3f}", flush=True)
    return passes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--faces", type=int, default=6400)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--weights", nargs="+", default=["0,0,1", "1,0,1", "1,0.5,1", "0,0.5,1"],
                        help="loss weights path,nodes,flat")
    parser.add_argument("--json", default=str(ROOT / "bench" / "joint_losses.json"))
    args = parser.parse_args()
    from cnntree import load_model
    from cnntree.data import load_faces

    data = load_faces(args.data)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        flat_file = Path(folder) / "flat.keras"
        load_model("default").keras_models()["net"].save(flat_file)
        for given in args.weights:
            weights = [float(v) for v in given.split(",")]
            rows.append({"weights": dict(zip(("path", "nodes", "flat"), weights)), "passes": run(weights, data, args,
                                                                                                   flat_file)})
    print(f"{'path,nodes,flat':16s} " + " ".join(f"{'pass ' + str(k):>13s}" for k in range(args.passes + 1))
          + "   (path accuracy / flat head, 1,200 PublicTest faces)")
    for row in rows:
        w = row["weights"]
        print(f"{w['path']:g},{w['nodes']:g},{w['flat']:g}".ljust(16) + " " + " ".join(
            f"{p['path']:.3f}/{p['flat_head']:.3f}".rjust(13) for p in row["passes"]))
    Path(args.json).write_text(json.dumps({"command": "python bench/joint_losses.py " + " ".join(sys.argv[1:]),
                                           "faces": args.faces, "passes": args.passes, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
