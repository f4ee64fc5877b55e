"""Commands on a spec: validate, show, data, augment."""

from __future__ import annotations

import json

from ..spec import load_spec, with_overrides
from .options import add_data, add_json, count, info


def spec_argument(p) -> None:
    """The spec file positional argument."""
    p.add_argument("spec", help="a spec file, e.g. trees/moravcik.json")


class Validate:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help, needs_backend = "validate", "check a spec; exit 0 when valid, 2 otherwise", False

    @staticmethod
    def add_arguments(p):
        spec_argument(p)

    @staticmethod
    def run(args) -> int:
        spec = load_spec(args.spec)
        print(f"{args.spec}: ok ({spec.kind} \"{spec.name}\", {len(spec.classes)} classes, "
              f"{len(spec.nodes)} network{'s' if len(spec.nodes) != 1 else ''})")
        return 0


class Show:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help, needs_backend = "show", "print the hierarchy as text, optionally draw it as a picture", False

    @staticmethod
    def add_arguments(p):
        spec_argument(p)
        p.add_argument("--png", metavar="FILE", help="also write a picture of the hierarchy")

    @staticmethod
    def run(args) -> int:
        from ..files import check_output_file
        from ..spec import text_tree

        spec = load_spec(args.spec)
        if args.png:
            check_output_file(args.png, "--png")
        print(text_tree(spec))
        if args.png:
            from ..plots import draw_hierarchy

            print(f"wrote {draw_hierarchy(spec, args.png)}")
        return 0


class Data:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help, needs_backend = "data", "split sizes and every node's balanced training-set counts", False

    @staticmethod
    def add_arguments(p):
        spec_argument(p)
        add_data(p)
        add_json(p)

    @staticmethod
    def run(args) -> int:
        from ..data.report import data_report, report_text

        report = data_report(with_overrides(load_spec(args.spec), data=args.data, skip_bad=args.skip_bad or None))
        if report["skipped"]:
            info(f"warning: skipped {report['skipped']} bad input(s); first: {report['skipped_first']}")
        if report["resized"]:
            info(f"note: {report['resized']} image(s) were not 48x48 and were resized")
        print(json.dumps(report, indent=2) if args.json else report_text(report))
        return 0


class Augment:
    """A ``cnntree`` command (its ``help`` says what it does)."""

    name, help, needs_backend = "augment", "a preview grid of one node's training augmentation (both engines)", True

    @staticmethod
    def add_arguments(p):
        spec_argument(p)
        p.add_argument("--node", required=True, help="node or member id (a single network's is \"net\")")
        p.add_argument("--out", required=True, metavar="PNG", help="the picture to write")
        p.add_argument("--data", metavar="PATH", help="faces from this data instead of the spec's")
        p.add_argument("--rows", type=count(1, 32), default=2, help="faces per output group (1-32, default 2)")
        p.add_argument("--columns", type=count(2, 32), default=8, help="copies per face, the original first "
                       "(2-32, default 8)")
        p.add_argument("--scale", type=count(1, 16), default=3, help="pixels per face pixel (1-16, default 3)")
        p.add_argument("--seed", type=count(0, 2**31 - 1), default=0, help="random seed of the copies")

    @staticmethod
    def run(args) -> int:
        from ..data.augment import write_preview
        from ..files import check_output_file
        from ..spec import summarize

        spec = with_overrides(load_spec(args.spec), data=args.data)
        node = spec.node(args.node)
        check_output_file(args.out, "--out")
        faces = write_preview(spec, node, args.out, args.rows, args.columns, args.scale, args.seed)
        print(f"{node.id}: augmentation {summarize('augment', node.augment)}")
        print(f"wrote {args.out}: {faces} faces (rows: {', '.join('+'.join(g) for g in node.groups)}), "
              "first column original; albumentations above, batch engine below")
        return 0


COMMANDS = [Validate, Show, Data, Augment]
