"""What a spec's data looks like before training: split sizes, and every network's groups with
their counts before and after balancing (``cnntree data``)."""

from __future__ import annotations

from ..spec import summarize
from .load import load_for_spec
from .nodedata import node_dataset


def data_report(spec) -> dict:
    """Split sizes and every network's groups with counts before and after balancing."""
    data, splits = load_for_spec(spec)
    nodes = []
    for node in spec.nodes:
        train = node_dataset(node, data.labels, data.classes, splits.train)
        nodes.append({"id": node.id, "groups": [list(g) for g in node.groups], "before": list(train.before),
                      "after": list(train.after), "balance": node.balance})
    return {"source": data.source, "classes": list(data.classes), "splits": splits.sizes(),
            "validation_from": splits.validation_source, "skipped": len(data.skipped),
            "skipped_first": data.skipped[0] if data.skipped else None, "resized": data.resized, "nodes": nodes}


def report_text(report: dict) -> str:
    """The report as lines for people."""
    lines = [f"data: {report['source']}",
             "splits: " + ", ".join(f"{k} {v}" for k, v in report["splits"].items())
             + f" (Validation carved from {report['validation_from']})"]
    for node in report["nodes"]:
        lines.append(f"{node['id']}  balance {summarize('balance', node['balance'])}")
        lines += [f"  {'+'.join(group):40s} {before:7d} -> {after:7d}"
                  for group, before, after in zip(node["groups"], node["before"], node["after"])]
    return "\n".join(lines)
