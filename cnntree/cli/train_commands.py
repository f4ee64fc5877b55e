"""Commands that train: train (one spec) and compare-trees (several under one budget).

The library is imported inside each command's functions: a command's mistakes are answered
before Keras and MLflow load (start-up time)."""

from __future__ import annotations

from ..spec import load_spec, with_overrides
from .options import EPOCHS, SEED_VALUE, WORKERS, add_data, add_json, add_parallel, count, info
from .spec_commands import spec_argument


class Train:
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
    def run(args):
        from ..workflows.train import new_model_folder, run_experiment

        out = args.out or new_model_folder(args.loaded.name)
        return run_experiment(args.loaded, experiment=args.experiment, work_dir=args.work_dir, resume=args.resume,
                              out=out, jobs=args.jobs, ray=args.ray, printer=info, register=args.register)

    @staticmethod
    def text(outcome) -> str:
        from ..evaluation.reports import evaluation_table
        from ..tracking.runs import ui_hint

        registered = f", registered as {outcome.registered_uri}" if outcome.registered_uri else ""
        return "\n".join([evaluation_table(outcome.results.items()), f"classifier saved to {outcome.out}{registered}",
                          f"MLflow run {outcome.run_id} in {outcome.tracking_uri} (experiment {outcome.experiment})",
                          ui_hint(outcome.experiment_id, outcome.compared)])


class CompareTrees:
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
    def run(args) -> dict:
        from ..workflows.compare import compare_specs

        specs = [load_spec(path) for path in args.specs]
        return compare_specs(specs, args.data, args.seeds, args.epochs, args.quick, args.experiment,
                             jobs=args.jobs, ray=args.ray, printer=info, against=args.against,
                             budget_epochs=args.budget_epochs, controls=args.controls)

    @staticmethod
    def text(result) -> str:
        from ..workflows.compare import ranking_table

        budget = ("quick" if result["quick"] else f"{result['epochs']} epochs per network" if result["epochs"] else
                  f"{result['budget_epochs']} epochs per spec" if result["budget_epochs"] else "each spec's own epochs")
        return (f"{len(result['rows'])} specs x {result['seeds']} seed(s), {budget}, ranked on "
                f"{result['test_faces']} PrivateTest faces (MLflow experiment {result['experiment']}):\n"
                + ranking_table(result))


COMMANDS = {"train": Train, "compare-trees": CompareTrees}
