"""The networks of a spec trained one by one, each on its own balanced data (``data.nodedata``):
a network's job, and the jobs run by a runner (``nets.parallel``: in turn, in processes, or as Ray
tasks)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..compose.calibration import training_priors
from ..data.balance import make_balancer
from ..data.nodedata import node_dataset, node_targets
from ..nets.parallel import NetworkJob
from ..nets.runtime import KerasRuntime


@dataclass
class Trained:
    """What training the nodes gives back: runtimes, histories and priors by node id, in spec
    order, and the faces seen (training faces times epochs, over every network)."""

    networks: dict = field(default_factory=dict)
    histories: dict = field(default_factory=dict)
    priors: dict = field(default_factory=dict)
    images_seen: int = 0


def network_job(spec, node, label, images, labels, validation, folder, printer, network_run=None, init=None):
    """One network's training job on its own balanced data and its training priors (what the
    resampling did, undone at prediction)."""
    classes = list(spec.classes)
    data = node_dataset(node, labels, classes, np.arange(len(labels)))
    index, targets = data.index, data.targets
    cap = node.train["max_samples"]
    if cap and len(index) > cap:
        index, targets = index[:cap], targets[:cap]  # shuffled
    val_index, val_targets = node_targets(node, validation[1], classes, np.arange(len(validation[1])))
    used = np.bincount(targets, minlength=len(node.groups)).tolist()
    resampled = (f"{make_balancer(node.balance).rule}: {list(data.before)} -> {list(data.after)}"
                 + (f", the first {cap} kept: {used}" if list(data.after) != used else ""))
    printer(f"[{label}] {' | '.join('+'.join(g) for g in node.groups)}: {len(index)} training faces "
            f"({resampled}), {len(val_index)} validation" + (", warm start from the flat network" if init else ""))
    settings = {"model": node.model, "augment": node.augment, "train": node.train, "init": init}
    job = NetworkJob(label, settings, len(node.groups), (images[index], targets),
                     (validation[0][val_index], val_targets), folder, data.class_weight,
                     network_run(node) if network_run else None)
    return job, training_priors(data.before, data.after, data.class_weight)


def faces_seen(job, state) -> int:
    """A finished job's budget: its training faces times the epochs it ran."""
    return len(job.train[1]) * len(state["history"].get("loss", []))


def train_nodes(spec, images, labels, validation, work, runner, printer, network_run=None, flat=None) -> Trained:
    """Every network of ``spec`` in ``work/nodes/<id>``, warm-started from ``flat`` when given."""
    jobs, trained = [], Trained()
    for i, node in enumerate(spec.nodes, start=1):
        init = None if flat is None else {"file": str(flat.file), "groups": flat.groups_of(node.groups)}
        job, trained.priors[node.id] = network_job(spec, node, f"{node.id} {i}/{len(spec.nodes)}", images, labels,
                                                   validation, work / "nodes" / node.id, printer, network_run, init)
        jobs.append(job)
    for position, model, state in runner.run(jobs, printer):
        node = spec.nodes[position]
        trained.networks[node.id] = KerasRuntime(model)
        trained.histories[node.id] = state["history"]
        trained.images_seen += faces_seen(jobs[position], state)
    trained.networks = {node.id: trained.networks[node.id] for node in spec.nodes}  # spec order
    return trained
