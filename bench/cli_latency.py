"""Benchmark: how fast ``cnntree`` answers the commands that need no network (``validate``, ``show``,
``data``, ``models``) and trivial mistakes (a missing image, model or data file, a bad option).
Target: <= 1 s each. Each command runs ``--repeat`` times in a fresh process; the median wall time is
reported. Prints a table and writes JSON.

    python bench/cli_latency.py [--repeat 5] [--json bench/cli_latency.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = str(ROOT / "trees" / "moravcik.json")
COMMANDS = [
    ("validate a spec", ["validate", SPEC], 0),
    ("show a spec", ["show", SPEC], 0),
    ("data of a spec (bundled sample)", ["data", SPEC], 0),
    ("models", ["models"], 0),
    ("predict: no such image", ["predict", "nonexist.png"], 2),
    ("evaluate: no such model", ["evaluate", "runs/models/nothere"], 2),
    ("evaluate: no such data", ["evaluate", "default", "--data", "missing.csv"], 2),
    ("train: no such spec", ["train", "trees/nothere.json"], 2),
    ("train: a bad option value", ["train", SPEC, "--epochs", "0"], 2),
]


def timed(args: list[str], cwd: str) -> tuple[float, int]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cnntree.cli", *args], cwd=cwd, capture_output=True)
    return time.perf_counter() - started, proc.returncode


def main() -> None:
    from timing import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", default=str(ROOT / "bench" / "cli_latency.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as cwd:
        for name, command, expected in COMMANDS:
            runs = [timed(command, cwd) for _ in range(args.repeat)]
            codes = {code for _, code in runs}
            rows.append({"what": name, "command": "cnntree " + " ".join(Path(a).name if a == SPEC else a for a in command),
                         "median_s": round(statistics.median(t for t, _ in runs), 3),
                         "max_s": round(max(t for t, _ in runs), 3), "exit": sorted(codes),
                         "as_expected": codes == {expected}})
    print(f"{'what':34s} {'median s':>9s} {'max s':>7s}  exit  command")
    for row in rows:
        print(f"{row['what']:34s} {row['median_s']:9.3f} {row['max_s']:7.3f}  {row['exit']}  {row['command']}")
    result = {"command": "python bench/cli_latency.py --repeat " + str(args.repeat), "cpu": cpu_model(), "python": platform.python_version(), "rows": rows,
              "all_under_1s": all(r["median_s"] <= 1.0 for r in rows)}
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"all medians <= 1 s: {result['all_under_1s']}; wrote {args.json}")


if __name__ == "__main__":
    main()
