"""Train specs on their training split and save each classifier, with no test splits and no MLflow:
for a machine that holds FER2013's Training split alone (a lent GPU, ``bench/gpu.sh``). The saved
models are evaluated where the full data lives (``bench/saved_models.py``, ``cnntree evaluate``).

    python bench/train_models.py --data fer2013_training.csv --out models/ --work work/ trees/default_vgg.json ...

Each spec trains in its own process when several are given (``--parallel``), so that small
networks share one GPU; every process logs to ``<out>/<spec>.log``.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def train_one(spec_path: str, data: str, out: Path, work: Path, seed: int, epochs: int | None,
              init_from: str | None = None) -> None:
    from cnntree import CnnTreeClassifier, load_spec, save_model, with_overrides
    from cnntree.data import load_faces
    from cnntree.data.splits import make_splits

    spec = with_overrides(load_spec(spec_path), data=data, seed=seed, epochs=epochs, init_from=init_from)
    faces = load_faces(spec.data_path())
    usage = {"scheme": "usage", "train": spec.data["split"]["train"], "test": []}  # no test split travels
    splits = make_splits(faces, usage, spec.data["validation"])
    started = time.time()
    clf = CnnTreeClassifier(spec, work_dir=work / spec.name, verbose=1)
    clf.fit(faces.images[splits.train], faces.labels[splits.train],
            (faces.images[splits.validation], faces.labels[splits.validation]))
    save_model(clf, out / spec.name)
    print(f"{spec.name}: trained in {time.time() - started:.0f} s, saved to {out / spec.name}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--data", required=True, help="a FER2013 CSV with (at least) its Training split")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True, help="checkpoints, one folder per spec")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="every network's epochs (default: the specs')")
    parser.add_argument("--parallel", action="store_true", help="one process per spec, all at once")
    parser.add_argument("--init-from", help="a saved flat classifier every spec starts from (a tree's init.from)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.parallel:
        for spec in args.specs:
            train_one(spec, args.data, args.out, args.work, args.seed, args.epochs, args.init_from)
        return 0
    jobs = []
    for spec in args.specs:
        log = open(args.out / f"{Path(spec).stem}.log", "w")
        command = [sys.executable, __file__, "--data", args.data, "--out", str(args.out), "--work", str(args.work),
                   "--seed", str(args.seed), *(["--epochs", str(args.epochs)] if args.epochs else []),
                   *(["--init-from", args.init_from] if args.init_from else []), spec]
        jobs.append((spec, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ)))
    failed = [spec for spec, job in jobs if job.wait() != 0]
    for spec in failed:
        print(f"{spec}: failed, see {args.out / (Path(spec).stem + '.log')}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
