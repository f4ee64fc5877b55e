"""The ``cnntree`` command: one sub-command per job, one-line errors, exit status 2 on bad input."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

from .errors import CnnTreeError


def _spec(args):
    from .spec import load_spec

    return load_spec(args.spec)


def cmd_validate(args) -> int:
    spec = _spec(args)
    print(f"{args.spec}: ok ({spec.kind} \"{spec.name}\", {len(spec.classes)} classes, "
          f"{len(spec.nodes)} network{'s' if len(spec.nodes) != 1 else ''})")
    return 0


def text_tree(spec) -> str:
    """The hierarchy as indented text, each network with its model and balance settings."""
    from .spec import summarize

    nodes = {n.id: n for n in spec.nodes}

    def label(name):
        if name not in nodes:
            return name
        node = nodes[name]
        return f"{name}  [{summarize('model', node.model)} | balance {summarize('balance', node.balance)}]"

    def walk(name, prefix):
        lines = []
        children = list(spec.graph.successors(name))
        for i, child in enumerate(children):
            last = i == len(children) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{label(child)}")
            lines.extend(walk(child, prefix + ("    " if last else "│   ")))
        return lines

    head = f"{spec.name}: {spec.kind} over {len(spec.classes)} classes ({', '.join(spec.classes)})"
    if spec.voting:
        head += f", {spec.voting} voting"
    roots = [n.id for n in spec.nodes if spec.graph.in_degree(n.id) == 0]
    lines = [head]
    for root in roots:
        lines += [label(root), *walk(root, "")]
    return "\n".join(lines)


def cmd_show(args) -> int:
    spec = _spec(args)
    print(text_tree(spec))
    if args.png:
        from .plots import draw_hierarchy

        print(f"wrote {draw_hierarchy(spec, args.png)}")
    return 0


def data_report(spec, path=None, skip_bad=None) -> dict:
    """Split sizes and every network's groups with counts before and after balancing."""
    from .data import load_for_spec
    from .nodedata import node_dataset

    data, splits = load_for_spec(spec, path, skip_bad)
    nodes = []
    for node in spec.nodes:
        train = node_dataset(node, data.labels, data.classes, splits.train)
        nodes.append({"id": node.id, "groups": [list(g) for g in node.groups], "before": list(train.before),
                      "after": list(train.after), "balance": node.balance})
    return {"source": data.source, "classes": list(data.classes), "splits": splits.sizes(),
            "validation_from": splits.validation_source, "skipped": len(data.skipped),
            "skipped_first": data.skipped[0] if data.skipped else None, "nodes": nodes}


def cmd_data(args) -> int:
    from .spec import summarize

    spec = _spec(args)
    report = data_report(spec, args.data, True if args.skip_bad else None)
    if report["skipped"]:
        print(f"warning: skipped {report['skipped']} bad input(s); first: {report['skipped_first']}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"data: {report['source']}")
    print("splits: " + ", ".join(f"{k} {v}" for k, v in report["splits"].items())
          + f" (Validation carved from {report['validation_from']})")
    for node in report["nodes"]:
        print(f"{node['id']}  balance {summarize('balance', node['balance'])}")
        for group, before, after in zip(node["groups"], node["before"], node["after"]):
            print(f"  {'+'.join(group):40s} {before:7d} -> {after:7d}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnntree", description="Hierarchical ensembles of CNNs for facial "
                                     "expression recognition.")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a spec; exit 0 when valid, 2 otherwise")
    p.add_argument("spec")
    p.set_defaults(run=cmd_validate)

    p = sub.add_parser("show", help="print the hierarchy as text, optionally draw it as a picture")
    p.add_argument("spec")
    p.add_argument("--png", metavar="FILE", help="also write a picture of the hierarchy")
    p.set_defaults(run=cmd_show)

    p = sub.add_parser("data", help="split sizes and every node's balanced training-set counts")
    p.add_argument("spec")
    p.add_argument("--data", metavar="PATH", help="a FER2013 .csv/.csv.gz or an image folder (default: the spec's)")
    p.add_argument("--skip-bad", action="store_true", help="skip bad rows/files and report their count")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=cmd_data)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("CNNTREE_DEBUG") == "1"
    try:
        return args.run(args)
    except CnnTreeError as error:
        print(f"cnntree: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnntree: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # an internal error: one line, traceback on request
        if debug:
            traceback.print_exc()
        print(f"cnntree: internal error: {type(error).__name__}: {error} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
