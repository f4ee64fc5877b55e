"""A voting ensemble of classifiers already trained: their networks as they are, combined by a vote,
nothing retrained. It is how snapshots of one training (a warm restart's before and after) or networks
trained apart become one classifier that evaluates, exports and runs in the mirror like any other."""

from __future__ import annotations

import re

from ..compose.voting import VOTES
from ..errors import CnnTreeError
from ..spec import parse_spec
from .classifier import CnnTreeClassifier


def member_ids(names: list[str]) -> list[str]:
    """One identifier per member from its model's name (a folder or shipped name), made unique."""
    ids = []
    for name in names:
        base = re.sub(r"[^A-Za-z0-9_]+", "_", name.rstrip("/").split("/")[-1]).strip("_")[:48] or "member"
        base = base if base[0].isalpha() else f"m_{base}"
        ident, k = base, 2
        while ident in ids:
            ident, k = f"{base}_{k}", k + 1
        ids.append(ident)
    return ids


def ensemble(members: dict[str, CnnTreeClassifier], vote: str = "soft", name: str = "ensemble") -> CnnTreeClassifier:
    """The voting classifier of ``members`` (id -> a trained single-network classifier). Each member
    keeps its network, calibration, priors and test-time views; ``weighted`` votes by each member's
    validation accuracy."""
    if vote not in VOTES:
        raise CnnTreeError(f"--vote: unknown rule \"{vote}\"; use one of {', '.join(VOTES)}")
    if len(members) < 2:
        raise CnnTreeError(f"an ensemble needs at least 2 models, got {len(members)}")
    classes, raw_members = None, []
    networks, val_accuracy, priors, histories, calibrations = {}, {}, {}, {}, {}
    for member_id, clf in members.items():
        clf._check_fitted()
        if clf.spec_.kind != "single":
            raise CnnTreeError(f"{member_id}: a {clf.spec_.kind} classifier; an ensemble's members are single "
                               "networks (a tree's or ensemble's own networks do not answer every class)")
        if classes is not None and tuple(clf.spec_.classes) != classes:
            raise CnnTreeError(f"{member_id}: classes {list(clf.spec_.classes)} differ from the other members' "
                               f"{list(classes)}")
        classes, node = tuple(clf.spec_.classes), clf.spec_.nodes[0]
        raw_members.append({"id": member_id, "model": node.model, "augment": node.augment, "train": node.train,
                            "balance": node.balance})
        networks[member_id] = clf.networks_[node.id]
        calibrations[member_id] = clf.calibration(node)
        for mine, theirs in ((val_accuracy, clf.val_accuracy_), (priors, clf.priors_), (histories, clf.histories_)):
            if node.id in theirs:
                mine[member_id] = theirs[node.id]
    raw = {"name": name, "kind": "voting", "classes": list(classes), "voting": vote, "members": raw_members,
           "description": f"A {vote} vote of {len(members)} trained networks ({', '.join(members)}), "
                          "composed by cnntree ensemble with nothing retrained."}
    spec = parse_spec(raw, source="cnntree ensemble")
    return CnnTreeClassifier.from_networks(spec, networks, val_accuracy, priors, histories, calibrations)
