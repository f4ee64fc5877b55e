"""Benchmark: parse time of a FER2013 CSV, cold and from the .npz cache.

    python bench/load.py [--data fer2013.csv.gz] [--repeat 3] [--json bench/load.json]

Prints a table and writes JSON. Targets (2-core CPU): <= 10 s cold, <= 1 s cached.
"""

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013.csv.gz"


def main():
    parser = argparse.ArgumentParser(description="FER2013 load times")
    parser.add_argument("--data", default=str(DEFAULT))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", default="bench/load.json")
    args = parser.parse_args()
    cache = tempfile.mkdtemp(prefix="cnntree-bench-")
    os.environ["CNNTREE_CACHE"] = cache
    from cnntree.data import load_faces

    rows = []
    try:
        for i in range(args.repeat):
            shutil.rmtree(cache, ignore_errors=True)
            start = time.perf_counter()
            data = load_faces(args.data)  # parses and writes the cache
            cold = time.perf_counter() - start
            start = time.perf_counter()
            load_faces(args.data)
            cached = time.perf_counter() - start
            rows.append({"run": i + 1, "images": len(data), "cold_s": round(cold, 3), "cached_s": round(cached, 3)})
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"{'run':>4} {'images':>8} {'cold s':>8} {'cached s':>9}")
    for r in rows:
        print(f"{r['run']:>4} {r['images']:>8} {r['cold_s']:>8.2f} {r['cached_s']:>9.3f}")
    best = {"cold_s": min(r["cold_s"] for r in rows), "cached_s": min(r["cached_s"] for r in rows)}
    print(f"best: cold {best['cold_s']:.2f} s (target <= 10), cached {best['cached_s']:.3f} s (target <= 1)")
    result = {"data": args.data, "machine": f"{platform.machine()}, {os.cpu_count()} cores", "runs": rows, "best": best}
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
