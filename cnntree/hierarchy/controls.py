"""Equal-cost controls: a tree whose nodes own layers (a branched shared trunk) holds more
parameters and multiply-adds than the flat network it grew from, so a gain over that network may be
capacity alone. Its control is the same flat network widened (``model.width``) until it costs the
tree's multiply-adds per face, trained from scratch with the flat network's own recipe under the
same budget (``compare-trees --controls``).
"""

from __future__ import annotations

import copy

from ..errors import CnnTreeError

WIDTHS = [round(1 + 0.05 * k, 2) for k in range(61)]  # 1.0 to 4.0: the widths a control may take


def tree_multiply_adds(spec) -> int:
    """Multiply-adds per face of ``spec``'s networks as built (a shared trunk once)."""
    from ..nets.cost import multiply_adds, network_multiply_adds
    from ..nets.heads import head_outputs, shared_networks

    root = spec.root
    if spec.trunk["shared"]:
        return multiply_adds(*shared_networks(root.model, root.train["normalize"], head_outputs(spec),
                                              spec.trunk["branch_at"]).values())
    return sum(network_multiply_adds(n.model, len(n.groups), n.train["normalize"]) for n in spec.nodes)


def matching_width(model: dict, normalize: str, classes: int, target: int) -> tuple[float, int]:
    """The width (from ``WIDTHS``) at which the flat ``model`` costs closest to ``target``
    multiply-adds per face, and that cost. The cost grows with the width, so a bisection builds
    about seven networks, not all 61."""
    from ..nets.cost import network_multiply_adds

    def cost(index: int) -> int:
        return network_multiply_adds({**model, "width": WIDTHS[index]}, classes, normalize)

    low, high = 0, len(WIDTHS) - 1  # the first width that costs at least the target, or the widest
    while low < high:
        middle = (low + high) // 2
        low, high = (middle + 1, high) if cost(middle) < target else (low, middle)
    best = min({low, max(low - 1, 0)}, key=lambda i: (abs(cost(i) - target), i))
    return WIDTHS[best], cost(best)


def control_spec(spec, resolve_model=None):
    """The equal-cost control of a branched tree (None for any other spec): the flat network it
    starts from (a saved model's spec, or the spec trained first), widened to the tree's cost."""
    from ..spec import load_spec, parse_spec, trains_first, with_overrides
    from ..training.flatstart import saved_flat

    source = spec.init_source()
    if spec.trunk["branch_at"] is None or source is None:
        return None
    flat = load_spec(source) if trains_first(source) else saved_flat(source, f"init.from {source}", resolve_model).spec
    model = flat.root.model
    if "width" not in model:
        raise CnnTreeError(f"--controls: {flat.name}'s model {model['name']} has no width to widen to {spec.name}'s "
                           "cost")
    target = tree_multiply_adds(spec)
    width, cost = matching_width(model, flat.root.train["normalize"], len(flat.classes), target)
    raw = copy.deepcopy(flat.raw)
    raw.pop("init", None)
    raw["name"] = f"{flat.name}_w{width:g}"
    raw["description"] = (f"Equal-cost control of {spec.name}: {flat.name} at width {width:g}, "
                          f"{cost / 1e6:.2f}M multiply-adds per face against the tree's {target / 1e6:.2f}M, "
                          "trained from scratch with its own recipe under the same budget.")
    raw.setdefault("defaults", {}).setdefault("model", {})["width"] = width
    recipe = {k: v for k, v in flat.overrides.items() if k not in ("data", "init_from")}  # e.g. the epochs it trained
    control = with_overrides(parse_spec(raw, source=flat.source, base_dir=flat.base_dir), **recipe)
    return control, {"control_of": spec.name, "width": width, "multiply_adds": cost, "tree_multiply_adds": target}
