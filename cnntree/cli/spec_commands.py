"""Commands on a spec: validate, show, data (no backend), augment."""

from __future__ import annotations

from ..data.report import data_report, report_text
from ..files import check_output_file
from ..spec import load_spec, summarize, text_tree, with_overrides
from .options import add_data, add_json, count, info


def spec_argument(p) -> None:
    """The spec file positional argument."""
    p.add_argument("spec", help="a spec file, e.g. trees/moravcik.json")


class Validate:
    @staticmethod
    def add_arguments(p):
        spec_argument(p)

    @staticmethod
    def run(args) -> dict:
        spec = load_spec(args.spec)
        return {"spec": args.spec, "kind": spec.kind, "name": spec.name, "classes": len(spec.classes),
                "networks": len(spec.nodes)}

    @staticmethod
    def text(found) -> str:
        return (f"{found['spec']}: ok ({found['kind']} \"{found['name']}\", {found['classes']} classes, "
                f"{found['networks']} network{'s' if found['networks'] != 1 else ''})")


class Show:
    @staticmethod
    def add_arguments(p):
        spec_argument(p)
        p.add_argument("--png", metavar="FILE", help="also write a picture of the hierarchy")

    @staticmethod
    def run(args) -> dict:
        spec = load_spec(args.spec)
        if not args.png:
            return {"tree": text_tree(spec)}
        check_output_file(args.png, "--png")
        from ..plots import draw_hierarchy  # matplotlib loads only for a picture

        return {"tree": text_tree(spec), "png": str(draw_hierarchy(spec, args.png))}

    @staticmethod
    def text(found) -> str:
        return found["tree"] + (f"\nwrote {found['png']}" if "png" in found else "")


class Data:
    @staticmethod
    def add_arguments(p):
        spec_argument(p)
        add_data(p)
        add_json(p)

    @staticmethod
    def run(args) -> dict:
        report = data_report(with_overrides(load_spec(args.spec), data=args.data, skip_bad=args.skip_bad or None))
        if report["skipped"]:
            info(f"warning: skipped {report['skipped']} bad input(s); first: {report['skipped_first']}")
        if report["resized"]:
            info(f"note: {report['resized']} image(s) were not 48x48 and were resized")
        return report

    text = staticmethod(report_text)


class Augment:
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
    def run(args) -> dict:
        from ..data.augment import write_preview  # the augmentation engines load only for this command

        spec = with_overrides(load_spec(args.spec), data=args.data)
        node = spec.node(args.node)
        check_output_file(args.out, "--out")
        faces = write_preview(spec, node, args.out, args.rows, args.columns, args.scale, args.seed)
        return {"node": node.id, "augment": summarize("augment", node.augment), "out": args.out, "faces": faces,
                "rows": ["+".join(g) for g in node.groups]}

    @staticmethod
    def text(found) -> str:
        return (f"{found['node']}: augmentation {found['augment']}\nwrote {found['out']}: {found['faces']} faces "
                f"(rows: {', '.join(found['rows'])}), first column original; albumentations above, batch engine below")


COMMANDS = {"validate": Validate, "show": Show, "data": Data, "augment": Augment}
