"""Where a spec becomes a graph: networks are inner nodes, classes are leaves."""

from __future__ import annotations

from dataclasses import replace

import networkx as nx

from .schema import fail


def hierarchy_graph(nodes, classes) -> nx.DiGraph:
    """The spec as a rooted tree: networks are inner nodes, classes are leaves.

    This is the single place where a spec becomes a graph; it checks one root, no cycle, and
    that every class is a leaf exactly once.
    """
    graph = nx.DiGraph()
    for node in nodes:
        graph.add_node(node.id, kind="node", where=node.where)
    for cls in classes:
        graph.add_node(cls, kind="class")
    for node in nodes:
        for child in node.children:
            graph.add_edge(node.id, child)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        loop = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        fail("nodes", f"the hierarchy has a cycle: {loop}")
    roots = [n.id for n in nodes if graph.in_degree(n.id) == 0]
    if len(roots) != 1:
        fail("nodes", f"a tree has exactly one root, found {len(roots)}: {', '.join(roots)} "
                      "(make the others children of a node)")
    twice = [c for c in classes if graph.in_degree(c) > 1]
    if twice:
        places = " and ".join(graph.nodes[p]["where"] for p in graph.predecessors(twice[0]))
        fail("nodes", f'class "{twice[0]}" is placed twice ({places}); every class must be a leaf exactly once')
    missing = [c for c in classes if graph.in_degree(c) == 0]
    if missing:
        fail("nodes", f'class{"es" if len(missing) > 1 else ""} {", ".join(map(repr, missing))} '
                      "not placed in the tree (every class must be a leaf once)")
    graph.graph["root"] = roots[0]
    return graph


def root_first(nodes, graph: nx.DiGraph) -> list:
    """Nodes in breadth-first order from the root, each with its groups of leaf classes.

    Leaf sets are gathered once, children before parents, so a deep chain costs linear time.
    """
    order = list(nx.bfs_tree(graph, graph.graph["root"]))
    rank = {name: k for k, name in enumerate(n for n in graph if graph.nodes[n]["kind"] == "class")}
    leaves: dict[str, list[str]] = {}
    for name in reversed(order):
        leaves[name] = [name] if graph.nodes[name]["kind"] == "class" else \
            [c for child in graph.successors(name) for c in leaves[child]]
    by_id = {n.id: n for n in nodes}
    return [replace(by_id[name],
                    groups=tuple(tuple(sorted(leaves[child], key=rank.get)) for child in by_id[name].children))
            for name in order if name in by_id]


def voting_graph(members, classes) -> nx.DiGraph:
    """An ensemble as a graph: every member above every class."""
    graph = nx.DiGraph()
    for member in members:
        graph.add_node(member.id, kind="node", where=member.where)
        for cls in classes:
            graph.add_edge(member.id, cls)
    for cls in classes:
        graph.nodes[cls]["kind"] = "class"
    return graph
