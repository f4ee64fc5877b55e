"""The house: dependencies point down the layers of docs/architecture.md, and its folder table
matches the folders."""

import ast
import re

from .helpers import ROOT

PACKAGE = ROOT / "cnntree"
LAYERS = [  # bottom up; a family imports from its own layer or below
    {"errors", "interrupts", "files", "cpu", "backend", "log"},
    {"spec", "pretrained", "plots"},
    {"data"},
    {"nets"},
    {"compose"},
    {"training"},
    {"estimator"},
    {"evaluation", "hierarchy"},
    {"tracking"},
    {"models"},
    {"workflows"},
    {"live"},
    {"cli", "cnntree"},
]
KNOWN_UPWARD: set = set()


def family(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "cnntree"


def layer(module: str) -> int:
    return next(k for k, names in enumerate(LAYERS) if family(module) in names)


def imports() -> list[tuple[str, str]]:
    """Every (module, imported cnntree module) pair, top-level imports and those inside functions."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        module = ".".join(parts if parts[-1] != "__init__" else parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[:len(package) - node.level + 1]
                if node.module:
                    found.append((module, ".".join(base + [node.module])))
                else:  # from . import x: the module x, or a name of the package
                    found += [(module, ".".join(base + [a.name])) if (ROOT.joinpath(*base, a.name + ".py").exists()
                              or ROOT.joinpath(*base, a.name).is_dir()) else (module, ".".join(base))
                              for a in node.names]
            elif isinstance(node, ast.Import):
                found += [(module, a.name) for a in node.names if a.name.startswith("cnntree.")]
    return found


def upward(pairs) -> set[tuple[str, str]]:
    return {(a.removeprefix("cnntree."), b.removeprefix("cnntree.")) for a, b in pairs
            if b.startswith("cnntree") and layer(b) > layer(a)}


def test_dependencies_point_down_the_layers():
    assert upward(imports()) == KNOWN_UPWARD


def test_the_layer_test_can_fail():
    assert upward([("cnntree.data.augment", "cnntree.nets.backend_old"), ("cnntree.nets.train", "cnntree")]) == \
        {("data.augment", "nets.backend_old"), ("nets.train", "cnntree")}
    assert not upward([("cnntree.cli.options", "cnntree.spec.schema"), ("cnntree.data.augment", "cnntree.backend")])


def test_every_family_has_a_layer():
    families = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    families |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert families <= set().union(*LAYERS)


def test_the_architecture_table_matches_the_folders():
    text = (ROOT / "docs" / "architecture.md").read_text()
    listed = set(re.findall(r"^\| `([^`]+)` \|", text, re.M))
    folders = {f"cnntree/{p.name}/" for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")}
    folders |= {f"{p.name}/" for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")
                and p.name not in ("cnntree", "cnntree.egg-info", "build", "dist")}
    assert folders <= listed | {"runs/"}, folders - listed
    assert {entry for entry in listed if entry.endswith("/")} <= folders | {"runs/"}
    modules = {p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    described = set(re.findall(r"`(\w+\.py)`", text.split("| `cnntree/*.py` |")[1].splitlines()[0]))
    assert modules == described


def test_modules_stay_small():
    """No module of the package over 350 lines, none of the command line over 250: a command parses,
    calls the library and prints."""
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > (250 if "/cli/" in name else 350)} == {}


def test_no_import_circles():
    """No module reaches itself through imports, at the top or inside functions."""
    import networkx as nx

    graph = nx.DiGraph((a, b) for a, b in imports() if b.startswith("cnntree") and a != b)
    assert list(nx.simple_cycles(graph)) == []
