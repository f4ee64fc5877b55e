"""Commands that train and compare: train, compare-trees, compare."""

from __future__ import annotations

import json

from ..spec import load_spec, with_overrides
from .options import EPOCHS, SEED_VALUE, WORKERS, add_data, add_json, add_parallel, count, info
from .spec_commands import spec_argument


class Train:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "train", "train every network, evaluate on the test splits, log to MLflow"

    @staticmethod
    def add_arguments(p):
        spec_argument(p)
        add_data(p, "the spec's (e.g. path/to/fer2013.csv)")
        p.add_argument("--epochs", type=EPOCHS, help="override every network's epochs (1-10000)")
        p.add_argument("--quick", action="store_true", help="smoke run: 1 epoch, <= 512 faces per network, "
                       "filters x0.25")
        p.add_argument("--experiment", help="MLflow experiment (default: one per data set, named after it, so "
                       "trees and single networks trained on the same data sit side by side)")
        p.add_argument("--seed", type=SEED_VALUE, help="override every network's seed (0-2147483647)")
        p.add_argument("--out", metavar="DIR", help="keep the trained classifier in DIR (a new folder, or one "
                       "cnntree wrote, which it replaces); default: runs/models/<spec name>, or <spec name>-2, -3, ... "
                       "when that exists: a finished model is never replaced unless you name it")
        p.add_argument("--register", metavar="NAME", help="also register the classifier in MLflow's model registry "
                       "as NAME (a new version each time): models:/NAME/<version> then names it")
        p.add_argument("--resume", action="store_true", help="continue an interrupted training from its checkpoints; "
                       "with --epochs N, continue it (or a finished one) to N epochs")
        p.add_argument("--work-dir", metavar="DIR", help="checkpoints and outputs (default runs/work/<spec name>); "
                       "an existing folder must be empty or one cnntree made")
        p.add_argument("--workers", type=WORKERS, help="processes augmenting each network's batches (1-256; default: "
                       "the spec's train.workers, 1); results do not depend on it")
        p.add_argument("--init-from", metavar="MODEL", help="start every network from this flat classifier's trunk "
                       "(a model folder, an MLflow run id, or a single-network spec trained first); the spec's "
                       "init.from otherwise")
        add_parallel(p)

    @staticmethod
    def check(args):
        """The spec and its overrides, read before the backend loads."""
        args.loaded = with_overrides(load_spec(args.spec), data=args.data, skip_bad=args.skip_bad or None,
                                     epochs=args.epochs, quick=args.quick or None, seed=args.seed,
                                     workers=args.workers, init_from=args.init_from)

    @staticmethod
    def run(args) -> int:
        from ..evaluation.reports import evaluation_table
        from ..tracking.runs import ui_hint
        from ..workflows.train import new_model_folder, run_experiment

        spec = args.loaded
        out = args.out or new_model_folder(spec.name)
        outcome = run_experiment(spec, experiment=args.experiment, work_dir=args.work_dir, resume=args.resume,
                                 out=out, jobs=args.jobs, ray=args.ray, printer=info, register=args.register)
        print(evaluation_table(outcome.results.items()))
        print(f"classifier saved to {out}" + (f", registered as models:/{args.register}/{outcome.registered}"
                                              if args.register else ""))
        print(f"MLflow run {outcome.run_id} in {outcome.tracking_uri} (experiment {outcome.experiment})")
        print(ui_hint(outcome.experiment_id, outcome.compared))
        return 0


class CompareTrees:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help = "compare-trees", "train specs under one budget and rank them with a paired test"

    @staticmethod
    def add_arguments(p):
        p.add_argument("specs", nargs="+", metavar="SPEC", help="the spec files to compare (same classes)")
        p.add_argument("--data", metavar="PATH", help="data instead of the specs' own")
        p.add_argument("--seeds", type=count(1, 100), default=1, help="seeds 0..N-1 for every spec (1-100, default 1)")
        budget = p.add_mutually_exclusive_group()
        budget.add_argument("--epochs", type=EPOCHS, help="the same epochs for every network of every spec (1-10000)")
        budget.add_argument("--budget-epochs", type=EPOCHS, metavar="N", help="the same total epochs for every spec: "
                            "a flat network it starts from, its networks and its joint fine-tuning all count; "
                            "the first stage it trains takes what the others leave")
        budget.add_argument("--quick", action="store_true", help="smoke budget: 1 epoch, <= 512 faces per network")
        p.add_argument("--experiment", default="compare-trees", help="the one MLflow experiment holding every run")
        p.add_argument("--against", metavar="NAME", help="the spec (by name) every other is tested against, for "
                       "example the flat network a tree should beat (default: the best)")
        p.add_argument("--controls", action="store_true", help="also train each branched tree's flat network widened "
                       "to the tree's multiply-adds, from scratch under the same budget")
        add_json(p)
        add_parallel(p)

    @staticmethod
    def run(args) -> int:
        from ..workflows.compare import compare_specs, ranking_table

        specs = [load_spec(path) for path in args.specs]
        result = compare_specs(specs, args.data, args.seeds, args.epochs, args.quick, args.experiment,
                               jobs=args.jobs, ray=args.ray, printer=info, against=args.against,
                               budget_epochs=args.budget_epochs, controls=args.controls)
        if args.json:
            print(json.dumps(result, indent=2))
            return 0
        budget = ("quick" if args.quick else f"{args.epochs} epochs per network" if args.epochs else
                  f"{args.budget_epochs} epochs per spec" if args.budget_epochs else "each spec's own epochs")
        print(f"{len(result['rows'])} specs x {args.seeds} seed(s), {budget}, ranked on {result['test_faces']} PrivateTest faces "
              f"(MLflow experiment {args.experiment}):")
        print(ranking_table(result))
        return 0


class Compare:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help, needs_backend = "compare", "cnntree runs in the MLflow store as a table, and per spec over seeds", False
    COLUMNS = {"public_accuracy": "public acc", "private_accuracy": "private acc", "private_accuracy_hard":
               "private hard", "private_accuracy_soft": "private soft", "private_macro_f1": "private mF1",
               "private_ece": "private ECE", "private_nll": "private NLL", "train_seconds": "train s"}

    @staticmethod
    def add_arguments(p):
        p.add_argument("--experiment", action="append", metavar="NAME",
                       help="only this MLflow experiment (repeat for several; default: every experiment)")
        p.add_argument("--against", metavar="SPEC", help="rank the finished runs as compare-trees does, with "
                       "McNemar's test of each spec against this one on PrivateTest (loads every classifier)")
        p.add_argument("--data", metavar="PATH", help="with --against: the data (default: the runs' own)")
        add_json(p)

    @classmethod
    def run(cls, args) -> int:
        from ..tracking.runs import finished_runs, over_seeds

        runs = finished_runs(args.experiment)
        if args.against:
            from ..backend import start
            from ..workflows.compare import rank_logged_runs, ranking_table

            start(args.debug)
            result = rank_logged_runs(runs, args.against, args.data)
            print(json.dumps(result, indent=2) if args.json else ranking_table(result))
            return 0
        groups = over_seeds(runs, "private_accuracy")
        if args.json:
            print(json.dumps({"runs": runs, "over_seeds": groups}, indent=2))
            return 0
        print(f"{'run':8s} {'status':8s} {'kind':7s} {'spec':24s} " + " ".join(f"{c:>13s}" for c in cls.COLUMNS.values()))
        for r in runs:
            cells = " ".join(f"{'-':>13s}" if (v := r["metrics"].get(c)) is None else
                             f"{v:13.0f}" if c == "train_seconds" else f"{v:13.4f}" for c in cls.COLUMNS)
            print(f"{r['run_id'][:8]:8s} {r['status'][:8]:8s} {r['kind']:7s} {r['spec'][:24]:24s} {cells}")
        if not runs:
            print("(no cnntree runs yet: run cnntree train SPEC)")
        if groups:
            print(f"\n{'spec':24s} {'budget':6s} {'seeds':>5s}  {'private acc (mean +- std)':>26s}  data")
            for g in sorted(groups, key=lambda g: -g["mean"]):
                print(f"{g['spec'][:24]:24s} {'quick' if g['quick'] else 'full':6s} {g['seeds']:5d}  "
                      f"{g['mean']:17.4f} +- {g['std']:.4f}  {g['data']}")
        return 0


COMMANDS = [Train, CompareTrees, Compare]
