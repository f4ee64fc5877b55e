"""Specs as short text: a section's settings that differ from the defaults, the tree as lines."""

from __future__ import annotations

import os

from .schema import Tagged
from .sections import SECTIONS


def summarize(section: str, config: dict) -> str:
    """A section as a short string showing only what differs from the schema's defaults.

    ``summarize("model", {"name": "vgg", "blocks": 3, ...})`` -> ``"vgg(blocks=3)"``.
    """
    schema = SECTIONS[section]
    tag = config.get(schema.tag) if isinstance(schema, Tagged) else None
    defaults = schema.parse({schema.tag: tag} if tag else {}, section)
    changed = [f"{k}={v}" if not isinstance(v, bool) else (k if v else f"no {k}")
               for k, v in config.items() if k != getattr(schema, "tag", None) and v != defaults.get(k)]
    inner = ", ".join(changed)
    if tag:
        return f"{tag}({inner})" if inner else tag
    return inner or "none"


def training_notes(spec) -> str:
    """How the networks train together, when they do: warm start, shared trunk, joint fine-tuning."""
    notes = []
    if spec.init_source():
        notes.append(f"every network starts from {os.path.basename(spec.init_source())}")
    if spec.trunk["shared"]:
        reads = ", each reading its classes' outputs" if spec.trunk["heads"] == "classes" else ""
        branch = spec.trunk["branch_at"]
        if branch is None:
            notes.append(f"the nodes are heads on one shared trunk{reads}")
        else:
            own = (("its last block" if branch == -1 else f"its last {-branch} blocks")
                   if isinstance(branch, int) and branch < 0 else
                   f"block {branch} and above" if isinstance(branch, int) else f"every layer after {branch}")
            notes.append(f"the nodes share one trunk, each with its own copy of {own}{reads}; the trunk runs "
                         "once per face")
    if spec.finetune["trunk_lr"] != 1:
        notes.append(f"the trunk fine-tunes at {spec.finetune['trunk_lr']:g} x the heads' rate")
    if spec.finetune["epochs"]:
        flat = " and a flat head on the trunk" if spec.finetune["loss"]["flat"] else ""
        notes.append(f"then {spec.finetune['epochs']} epochs of joint fine-tuning on the path product{flat}")
    return "; ".join(notes)


def text_tree(spec) -> str:
    """The hierarchy as indented text, each network with its model and balance settings."""
    nodes = {n.id: n for n in spec.nodes}

    def label(name):
        if name not in nodes:
            return name
        node = nodes[name]
        return f"{name}  [{summarize('model', node.model)} | balance {summarize('balance', node.balance)}]"

    lines = [f"{spec.name}: {spec.kind} over {len(spec.classes)} classes ({', '.join(spec.classes)})"
             + (f", {spec.voting} voting" if spec.voting else "")]
    training = training_notes(spec)
    if training:
        lines.append(f"({training})")
    roots = [n.id for n in spec.nodes if spec.graph.in_degree(n.id) == 0]
    stack = [(root, "", None) for root in reversed(roots)]  # (name, prefix, is last child; None: a root)
    while stack:  # iterative: a deep chain must not exhaust Python's stack
        name, prefix, last = stack.pop()
        lines.append(label(name) if last is None else f"{prefix}{'└── ' if last else '├── '}{label(name)}")
        inner = "" if last is None else prefix + ("    " if last else "│   ")
        children = list(spec.graph.successors(name))
        stack.extend((child, inner, i == len(children) - 1) for i, child in reversed(list(enumerate(children))))
    return "\n".join(lines)
