"""Reports people read: an evaluation as JSON, text and confusion-matrix pictures, and as a table."""

from __future__ import annotations

import json
from pathlib import Path

from ..files import write_text_atomically
from ..plots import draw_confusion, draw_reliability


def distinct_modes(result: dict) -> dict:
    """The modes of an evaluation that answer differently: a single network's routing modes are one
    answer (its default mode's), every mode of a tree or an ensemble its own."""
    if result.get("kind") == "single":
        return {result["default_mode"]: result["modes"][result["default_mode"]]}
    return result["modes"]


def evaluation_table(rows) -> str:
    """Metrics per split and mode as a fixed-width table (the default mode starred; calibration
    columns only for modes that answer with probabilities), one row per distinct mode."""
    lines = [f"{'split':12s} {'mode':9s} {'accuracy':>9s} {'macro F1':>9s} {'weighted F1':>12s} {'ECE':>7s} "
             f"{'NLL':>7s} {'Brier':>7s}"]
    for split, result in rows:
        for mode, m in distinct_modes(result).items():
            star = "*" if mode == result["default_mode"] else " "
            calibration = " ".join(f"{m[k]:7.4f}" if k in m else f"{'-':>7s}" for k in ("ece", "nll", "brier"))
            lines.append(f"{split:12s} {mode + star:9s} {m['accuracy']:9.4f} {m['macro_f1']:9.4f} "
                         f"{m['weighted_f1']:12.4f} {calibration}")
    return "\n".join(lines)


def write_evaluation(result: dict, classes, split: str, folder: Path) -> list[Path]:
    """Reports (JSON, text), a confusion-matrix picture per mode and a reliability diagram (the composed
    classifier's probabilistic modes, then each network of a tree or ensemble) of one split;
    returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"{split}_report.json"]
    write_text_atomically(files[0], json.dumps(result, indent=2))
    text = []
    for mode, m in distinct_modes(result).items():
        text.append(f"== {split}, {mode} ==\n" + report_text(m["report"]))
        files.append(draw_confusion(m["confusion"], classes, folder / f"{split}_{mode}_confusion.png",
                                    f"{split} ({mode}): share of each true class, and count"))
    for node, report in result["nodes"].items():
        text.append(f"== {split}, network {node} on its own test data ==\n" + report_text(report["report"]))
    panels = {f"{mode} ({'composed' if len(result['nodes']) > 1 else 'network'})": m
              for mode, m in distinct_modes(result).items() if "reliability" in m}
    if len(result["nodes"]) > 1:
        panels.update({f"network {node}": report for node, report in result["nodes"].items()})
    if panels:
        files.append(draw_reliability(panels, folder / f"{split}_reliability.png", f"{split}: reliability"))
    files.append(folder / f"{split}_report.txt")
    write_text_atomically(files[-1], "\n".join(text))
    return files


def report_text(report: dict) -> str:
    """A per-class report as aligned text."""
    lines = [f"{'':28s} {'precision':>9s} {'recall':>9s} {'f1':>9s} {'support':>8s}"]
    for name, row in report.items():
        if isinstance(row, dict):
            lines.append(f"{name:28s} {row['precision']:9.3f} {row['recall']:9.3f} {row['f1-score']:9.3f} "
                         f"{int(row['support']):8d}")
    return "\n".join(lines) + f"\naccuracy {report['accuracy']:.4f}\n"
