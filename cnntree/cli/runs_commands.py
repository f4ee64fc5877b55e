"""Commands that read the MLflow store: compare (the runs as a table, or ranked with a paired test).

The library is imported inside each command's functions: a command's mistakes are answered
before Keras and MLflow load (start-up time)."""

from __future__ import annotations

from .options import add_json

COLUMNS = {"public_accuracy": "public acc", "private_accuracy": "private acc", "private_accuracy_hard":
           "private hard", "private_accuracy_soft": "private soft", "private_macro_f1": "private mF1",
           "private_ece": "private ECE", "private_nll": "private NLL", "train_seconds": "train s"}


def runs_table(found: dict) -> str:
    """Every run with its headline metrics, then each spec's mean over seeds."""
    runs, groups = found["runs"], found["over_seeds"]
    lines = [f"{'run':8s} {'status':8s} {'kind':7s} {'spec':24s} " + " ".join(f"{c:>13s}" for c in COLUMNS.values())]
    for r in runs:
        cells = " ".join(f"{'-':>13s}" if (v := r["metrics"].get(c)) is None else
                         f"{v:13.0f}" if c == "train_seconds" else f"{v:13.4f}" for c in COLUMNS)
        lines.append(f"{r['run_id'][:8]:8s} {r['status'][:8]:8s} {r['kind']:7s} {r['spec'][:24]:24s} {cells}")
    if not runs:
        lines.append("(no cnntree runs yet: run cnntree train SPEC)")
    if groups:
        lines.append(f"\n{'spec':24s} {'budget':6s} {'seeds':>5s}  {'private acc (mean +- std)':>26s}  data")
        lines += [f"{g['spec'][:24]:24s} {'quick' if g['quick'] else 'full':6s} {g['seeds']:5d}  "
                  f"{g['mean']:17.4f} +- {g['std']:.4f}  {g['data']}" for g in sorted(groups, key=lambda g: -g["mean"])]
    return "\n".join(lines)


class Compare:
    @staticmethod
    def add_arguments(p):
        p.add_argument("--experiment", action="append", metavar="NAME",
                       help="only this MLflow experiment (repeat for several; default: every experiment)")
        p.add_argument("--against", metavar="SPEC", help="rank the finished runs as compare-trees does, with "
                       "McNemar's test of each spec against this one on PrivateTest (loads every classifier)")
        p.add_argument("--data", metavar="PATH", help="with --against: the data (default: the runs' own)")
        add_json(p)

    @staticmethod
    def run(args) -> dict:
        from ..tracking.runs import finished_runs, over_seeds

        runs = finished_runs(args.experiment)
        if not args.against:
            return {"runs": runs, "over_seeds": over_seeds(runs, "private_accuracy")}
        from ..backend import start  # the classifiers load only to rank: Keras starts only then
        from ..workflows.compare import rank_logged_runs

        start(args.debug)
        return rank_logged_runs(runs, args.against, args.data)

    @staticmethod
    def text(found) -> str:
        if "runs" in found:
            return runs_table(found)
        from ..workflows.compare import ranking_table

        return ranking_table(found)


COMMANDS = {"compare": Compare}
