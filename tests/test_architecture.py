"""The import graph of apps/ (grimp, which import-linter uses): no cycle between modules, core knows no domain,
and every module of apps.clusters sits in one of the layers of pyproject.toml's import-linter contract.

grimp reads every import statement, those inside functions too, so a cycle cannot hide in a function body.
"""

import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ("apps.accounts", "apps.clusters", "apps.releases", "apps.observability")


@pytest.fixture(scope="module")
def graph():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return grimp.build_graph("apps", "kubemate", include_external_packages=False, cache_dir=None)


def module_cycles(graph) -> list[list[str]]:
    """Each set of modules of apps/ that import one another in a ring (strongly connected components), sorted."""
    modules = sorted(m for m in graph.modules if m.startswith("apps."))
    edges = {m: [i for i in graph.find_modules_directly_imported_by(m) if i.startswith("apps.")] for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(root: str) -> None:
        # Tarjan's algorithm without recursion: (module, iterator over what it imports).
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, imported = work[-1]
            for other in imported:
                if other not in index:
                    index[other] = low[other] = len(index)
                    stack.append(other)
                    on_stack.add(other)
                    work.append((other, iter(edges[other])))
                    break
                if other in on_stack:
                    low[module] = min(low[module], index[other])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[module])
                if low[module] == index[module]:
                    ring = []
                    while True:
                        other = stack.pop()
                        on_stack.discard(other)
                        ring.append(other)
                        if other == module:
                            break
                    if len(ring) > 1 or module in edges[module]:
                        found.append(sorted(ring))

    for module in modules:
        if module not in index:
            visit(module)
    return sorted(found)


def describe(graph, ring: list[str]) -> str:
    lines = []
    for importer in ring:
        for imported in ring:
            for detail in graph.get_import_details(importer=importer, imported=imported):
                lines.append(f"  {importer} -> {imported} (line {detail['line_number']})")
    return "\n".join(lines)


def test_no_import_cycle_between_modules_of_apps(graph):
    cycles = module_cycles(graph)
    assert cycles == [], "import cycles:\n" + "\n".join(describe(graph, ring) for ring in cycles)


def test_the_cycle_finder_sees_imports_inside_functions():
    graph = grimp.ImportGraph()
    for module in ("apps.a", "apps.b", "apps.c"):
        graph.add_module(module)
    graph.add_import(importer="apps.a", imported="apps.b", line_number=1, line_contents="from apps import b")
    graph.add_import(importer="apps.b", imported="apps.a", line_number=9, line_contents="    from apps import a")
    graph.add_import(importer="apps.b", imported="apps.c", line_number=2, line_contents="from apps import c")
    assert module_cycles(graph) == [["apps.a", "apps.b"]]


def test_core_imports_no_domain_app(graph):
    core = {m for m in graph.modules if m == "apps.core" or m.startswith("apps.core.")}
    reached = set()
    for module in core:
        reached |= graph.find_modules_directly_imported_by(module)
    domain = sorted(m for m in reached if m.startswith(DOMAINS) or m.split(".")[0] == "kubemate")
    assert domain == []


def test_every_clusters_module_is_in_a_layer_of_the_contract(graph):
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["id"] == "layers")["layers"]
    named = {name.strip().strip("()") for layer in layers for name in layer.replace("|", ":").split(":")}
    clusters = sorted(m for m in graph.modules if m.startswith("apps.clusters."))
    unplaced = [m for m in clusters if not any(m == n or m.startswith(n + ".") for n in named)]
    # Only the packages that hold the layers (apps.clusters.registry, .inventory) may stay unnamed.
    assert [m for m in unplaced if graph.find_children(m) == set()] == []
