"""A tree whose nodes are heads or branches on one shared trunk (``trunk.shared``): the networks
built, warm-started from the flat network, and joined into one network that runs the trunk once
per face."""

from __future__ import annotations

import keras

from ..nets.heads import head_outputs, one_pass, shared_networks
from ..nets.runtime import KerasRuntime, one_pass_columns
from ..nets.warmstart import warm_start

FLAT_HEAD = "_flat"  # the flat head's key among a shared trunk's heads (its layers' name prefix)


def trunk_networks(spec, flat, printer) -> tuple[dict, object]:
    """The nodes as ``Columns`` of one network (warm-started from ``flat`` when given), and the
    flat head on the same trunk when the fine-tuning loss weighs one (else None)."""
    root = spec.root
    keras.utils.set_random_seed(root.train["seed"])
    by_class = spec.trunk["heads"] == "classes"
    heads = head_outputs(spec)
    if spec.finetune["loss"]["flat"]:
        heads[FLAT_HEAD] = len(spec.classes)  # not a valid node id: never a node's
    networks = shared_networks(root.model, root.train["normalize"], heads, spec.trunk["branch_at"])
    if flat is not None:
        model = keras.saving.load_model(flat.file, safe_mode=True, compile=False)
        for node in spec.nodes:  # a class-read head starts as the flat outputs of its classes
            groups = [[c] for group in node.groups for c in group] if by_class else node.groups
            warm_start(networks[node.id], model, flat.groups_of(groups))
        if FLAT_HEAD in networks:
            warm_start(networks[FLAT_HEAD], model, flat.groups_of([[c] for c in spec.classes]))
    branch = spec.trunk["branch_at"]
    printer(f"[trunk] {len(spec.nodes)} {'heads' if branch is None else 'branches'} on one {root.model['name']} trunk"
            + ("" if branch is None else f" (branching at {branch})")
            + (" and a flat head" if FLAT_HEAD in networks else "")
            + (", warm start from the flat network" if flat is not None else ""))
    nodes = [networks[n.id] for n in spec.nodes]
    columns = one_pass_columns(KerasRuntime(one_pass(nodes)), [len(n.groups) for n in spec.nodes], nodes)
    return dict(zip((n.id for n in spec.nodes), columns)), networks.get(FLAT_HEAD)
