"""Pictures people would rather look at than numbers: hierarchies, confusion matrices, reliability
diagrams, timelines, explanations."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402

from .files import write_atomically  # noqa: E402
from .spec import Spec, summarize  # noqa: E402


def save_figure(fig, path) -> Path:
    """Write a figure atomically (temporary file, then rename) and close it."""
    try:
        return write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png"))
    finally:
        plt.close(fig)


def hierarchy_layout(graph: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """Classes on the bottom row in depth-first order; every network above its children."""
    roots = [n for n in graph if graph.in_degree(n) == 0]
    order = [n for root in roots for n in nx.dfs_preorder_nodes(graph, root)]
    classes = list(dict.fromkeys(n for n in order if graph.nodes[n]["kind"] == "class"))
    depth = {n: min(nx.shortest_path_length(graph, r, n) for r in roots if nx.has_path(graph, r, n)) for n in graph}
    bottom = max(depth.values())
    pos = {c: (float(i), -float(bottom)) for i, c in enumerate(classes)}
    for level in range(bottom - 1, -1, -1):
        row = [n for n in dict.fromkeys(order) if depth[n] == level and n not in pos]
        xs = [sum(pos[c][0] for c in graph.successors(n)) / graph.out_degree(n) for n in row]
        if len(set(round(x, 3) for x in xs)) < len(xs):  # members of a vote share one centre: spread them
            step = (len(classes) - 1) / max(1, len(row) - 1) if len(row) > 1 else 0
            xs = [i * step if len(row) > 1 else (len(classes) - 1) / 2 for i in range(len(row))]
        pos.update({n: (x, -float(level)) for n, x in zip(row, xs)})
    return pos


def draw_hierarchy(spec: Spec, path) -> Path:
    """The spec's networks (with model and balance settings) above the classes they predict."""
    graph, pos = spec.graph, hierarchy_layout(spec.graph)
    width = max(6.0, 1.6 * sum(1 for n in graph if graph.nodes[n]["kind"] == "class"))
    height = 1.0 + 1.6 * (max(-y for _, y in pos.values()) + 1)
    fig, ax = plt.subplots(figsize=(width, height))
    for u, v in graph.edges:
        ax.annotate("", xy=pos[v], xytext=pos[u],
                    arrowprops=dict(arrowstyle="-|>", color="#666", shrinkA=22, shrinkB=12, lw=1.2))
    nodes = {n.id: n for n in spec.nodes}
    for name, (x, y) in pos.items():
        if name in nodes:
            node = nodes[name]
            text = f"{name}\n{summarize('model', node.model)}\nbalance: {summarize('balance', node.balance)}"
            if spec.trunk["branch_at"] is not None:  # a branched trunk: the node's own layers, drawn in its box
                text += f"\nown layers from branch_at {spec.trunk['branch_at']}"
            style = dict(boxstyle="round,pad=0.4", fc="#dbe9f6", ec="#2c6fad")
        else:
            text, style = name, dict(boxstyle="round,pad=0.3", fc="#fdf1d6", ec="#c48a12")
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5, bbox=style, zorder=3)
    from .spec.text import training_notes

    title = f"{spec.name} ({spec.kind}" + (f", {spec.voting} voting" if spec.voting else "") + ")"
    notes = training_notes(spec)
    ax.set_title(title + (f"\n{notes}" if notes else ""), fontsize=11 if not notes else 9)
    xs = [x for x, _ in pos.values()]
    ys = [y for _, y in pos.values()]
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.axis("off")
    return save_figure(fig, path)


def draw_confusion(confusion, classes, path, title: str = "") -> Path:
    """A confusion matrix in one picture: each true class's row coloured by its share of the row
    (recall on the diagonal), every cell with that share and its count of faces."""
    import numpy as np

    counts = np.asarray(confusion, dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.75 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion (share of each true class, and count)")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{shares[i, j]:.2f}\n{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if shares[i, j] > 0.5 else "black")
    return save_figure(fig, path)


def draw_reliability(panels: dict, path, title: str = "") -> Path:
    """Reliability diagrams, one panel per name: accuracy against mean confidence in each bin
    (``calibration_metrics``' ``reliability``), the diagonal a calibrated model follows, the gap
    shaded, bin sizes as a histogram below, ECE and NLL in the panel's title."""
    import numpy as np

    fig, axes = plt.subplots(2, len(panels), figsize=(3.2 * len(panels), 4.4), squeeze=False, sharey="row",
                             gridspec_kw={"height_ratios": [3, 1]})  # one scale a row, labelled once
    for (name, metrics), ax, hist in zip(panels.items(), axes[0], axes[1]):
        bins = metrics["reliability"]
        counts = np.asarray(bins["counts"])
        edges = np.linspace(0, 1, len(counts) + 1)
        used = counts > 0  # an empty bin draws nothing (zero height)
        accuracy = np.where(used, bins["accuracy"], 0.0)
        ax.plot([0, 1], [0, 1], color="#888", lw=1, ls="--")
        # steps, one shape a series (a bar per bin drew 1.6 times slower)
        ax.stairs(accuracy, edges, fill=True, color="#2c6fad", label="accuracy")
        ax.stairs(np.where(used, bins["confidence"], 0.0), edges, baseline=accuracy, fill=True, color="#e4572e",
                  alpha=0.35, lw=0, label="gap to confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{name}\nECE {metrics['ece']:.3f}  NLL {metrics['nll']:.3f}", fontsize=9)
        ax.set_xticks([])
        hist.stairs(counts / max(counts.sum(), 1), edges, fill=True, color="#888")
        hist.set_xlim(0, 1)
        hist.set_xticks([0, 0.5, 1], ["0", "0.5", "1"])
        hist.set_xlabel("confidence")
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(loc="upper left", fontsize=7, frameon=False)
    axes[1][0].set_ylabel("share")
    fig.suptitle(title or "reliability", fontsize=11)
    fig.subplots_adjust(top=0.8, wspace=0.12, hspace=0.15)  # fixed spacing (the margins are cut to fit on saving)
    return save_figure(fig, path)


def class_colours(classes) -> dict[str, tuple]:
    """One fixed colour per class, so every timeline of a classifier reads the same."""
    palette = plt.get_cmap("tab10").colors
    return {name: palette[i % len(palette)] for i, name in enumerate(classes)}


def draw_timeline(times, probabilities, classes, path, bands=(), title: str = "") -> Path:
    """The main face's emotion probabilities over time, and the last frame's distribution.

    ``probabilities`` is (frames, classes) with NaN rows where no face was seen; ``bands`` are
    (start, end, class) spans drawn under the curves (a rehearsal script's expected emotions).
    """
    import numpy as np

    times, probabilities = np.asarray(times, float), np.asarray(probabilities, float).reshape(len(times), len(classes))
    colours = class_colours(classes)
    fig, (ax, bars) = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [4, 1]})
    for start, end, name in bands:
        ax.axvspan(start, end, ymin=0, ymax=0.06, color=colours[name], alpha=0.9, lw=0)
        ax.axvspan(start, end, color=colours[name], alpha=0.08, lw=0)
        ax.text((start + end) / 2, 0.035, name, ha="center", va="center", fontsize=7, transform=ax.get_xaxis_transform())
    for k, name in enumerate(classes):
        ax.plot(times, probabilities[:, k], color=colours[name], lw=1.6, label=name)
    ax.set_ylim(0, 1)
    ax.set_xlim(times.min() if len(times) else 0, max(times.max() if len(times) else 1, 1e-3))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability (main face, smoothed)")
    ax.set_title(title or "emotion timeline")
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.18), ncol=len(classes), fontsize=8, frameon=False)
    seen = np.flatnonzero(~np.isnan(probabilities).any(axis=1))
    last = probabilities[seen[-1]] if len(seen) else np.zeros(len(classes))
    bars.barh(range(len(classes)), last, color=[colours[c] for c in classes])
    bars.set_yticks(range(len(classes)), classes)
    bars.invert_yaxis()
    bars.set_xlim(0, 1)
    bars.set_title(f"last frame with a face ({times[seen[-1]]:.1f} s)" if len(seen) else "no face seen", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def _overlay(ax, face, heat, title: str) -> None:
    ax.imshow(face, cmap="gray", vmin=0, vmax=255)
    if heat is not None:
        ax.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def draw_explanations(explanations, path, title: str = "") -> Path:
    """One row per face: the face, each network's heat map for its step toward the class (with the
    branch and its probability), and the class map."""
    most = max(len(e.steps) for e in explanations)
    columns = 1 + most + (most > 1)  # one network: its map is the class map
    fig, axes = plt.subplots(len(explanations), columns, figsize=(1.9 * columns, 2.1 * len(explanations)),
                             squeeze=False)
    for row, e in zip(axes, explanations):
        for ax in row:
            ax.axis("off")
        _overlay(row[0], e.face, None, "face")
        for ax, step in zip(row[1:], e.steps):
            _overlay(ax, e.face, step.heat, f"{step.network}: {step.branch[:18]}\n{step.probability:.2f}")
        if most > 1:
            _overlay(row[-1], e.face, e.heat, f"class {e.label}\n{e.probability:.2f}")
    fig.suptitle(title or "what the networks look at", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def draw_mistakes(rows: dict, path, title: str = "") -> Path:
    """A grid of confident mistakes: one row per true class (``rows``: class -> explanations of
    the wrong predicted class), each face with its heat map and what it was taken for."""
    columns = max([len(found) for found in rows.values()] + [1])
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.8 * columns + 1, 1.9 * len(rows)), squeeze=False)
    for row, (name, found) in zip(axes, rows.items()):
        for ax in row:
            ax.axis("off")
        for ax, e in zip(row, found):
            _overlay(ax, e.face, e.heat, f"-> {e.label} {e.probability:.2f}")
        row[0].text(-0.15, 0.5, name, transform=row[0].transAxes, ha="right", va="center", fontsize=9)
    fig.suptitle(title or "most confident mistakes per true class", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def draw_answer_curves(curves: dict, path, title: str = "", marks: dict | None = None) -> Path:
    """Hierarchical answers: accuracy (answers that hold the true class) against mean specificity,
    one curve per hierarchy (``curves``: name -> {"specificity", "risk"}), with ``marks`` (name ->
    (specificity, accuracy)) at a calibrated coverage."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for name, curve in curves.items():
        line, = ax.plot(curve["specificity"], [1 - r for r in curve["risk"]], label=name, linewidth=1.6)
        if marks and name in marks:
            ax.plot(*marks[name], "o", color=line.get_color())
    ax.set_xlabel("mean specificity of the answers (0: any emotion, 1: one emotion)")
    ax.set_ylabel("answers holding the true emotion")
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)
