"""The package's layering, read from the source with ast (no import side effects).

Every module of ``trajspin`` belongs to one layer (ARCHITECTURE.md); a module imports only
from its own layer or the layers below it:

    0  version, errors
    1  validation, caches, channels, outputs, progress, kernels/   (kernels: numba only)
    2  sectors
    3  model
    4  initial, observables, grids, interop
    5  resources, results/
    6  estimate, budget
    7  exact/, trajectories/, mean_field/
    8  demon/
    9  runners/
   10  cli, the package root

* No import cycle among trajspin's modules.
* No import inside a function, except of optional dependencies (matplotlib, qutip, tqdm,
  mpi4py) and ``Chain.to_qutip``'s adapter ``trajspin.interop`` (qutip is optional).
* Kernel modules import only numpy, numba, math and each other.
* mpi4py is imported by ``runners/mpi.py`` only, so everything else runs without MPI.

Each rule is checked by a function that also runs on a small synthetic case with a
violation, so the test can fail.
"""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "trajspin"
LAYERS = {
    "version": 0, "errors": 0,
    "validation": 1, "caches": 1, "channels": 1, "outputs": 1, "progress": 1, "kernels": 1,
    "sectors": 2, "model": 3,
    "initial": 4, "observables": 4, "grids": 4, "interop": 4,
    "resources": 5, "results": 5,
    "estimate": 6, "budget": 6,
    "exact": 7, "trajectories": 7, "mean_field": 7,
    "demon": 8, "runners": 9, "cli": 10, "__init__": 10,
}
KERNEL_ALLOWED = {"numpy", "numba", "math", "__future__"}
OPTIONAL = {"matplotlib", "qutip", "tqdm", "mpi4py"}
LAZY_ALLOWED = {("trajspin.model", "trajspin.interop")}


def _modules():
    """{dotted name: path} of every module of the package."""
    out = {}
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _layer(module):
    """Layer of a dotted module name ``trajspin.x[.y]`` (by its first component)."""
    parts = module.split(".")
    return LAYERS["__init__" if len(parts) == 1 else parts[1]]


def _imports(path, module, scope="module"):
    """(external top-level names, internal dotted modules) imported by one file.

    scope "module": statements at module level; "local": inside functions/classes only.
    """
    tree = ast.parse(path.read_text())
    nodes = tree.body if scope == "module" else [
        n for top in tree.body if not isinstance(top, (ast.Import, ast.ImportFrom))
        for n in ast.walk(top)]
    known = _modules()
    external, internal = set(), set()
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                (internal if a.name.startswith("trajspin") else external).add(
                    a.name if a.name.startswith("trajspin") else a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{module}: relative import (use trajspin.* paths)")
            if node.module and node.module.startswith("trajspin"):
                for a in node.names:      # "from trajspin.x import y": y may be a module
                    sub = f"{node.module}.{a.name}"
                    internal.add(sub if sub in known else node.module)
            elif node.module:
                external.add(node.module.split(".")[0])
    return external, internal


def _graph():
    mods = _modules()
    return {m: _imports(p, m)[1] - {m} for m, p in mods.items()}


def _find_cycle(graph):
    """A list of modules forming a cycle, or None (depth-first search)."""
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == "open":
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        state[n] = "done"
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def _upward(graph, layer=_layer):
    """(importer, imported) pairs where a module imports from a higher layer."""
    return sorted((a, b) for a, bs in graph.items() for b in bs if layer(b) > layer(a))


def test_cycle_finder_finds_a_planted_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_upward_finder_finds_a_planted_upward_import():
    layers = {"low": 0, "high": 1}
    assert _upward({"low": {"high"}, "high": {"low"}}, layers.get) == [("low", "high")]


def test_every_module_has_a_layer():
    assert all(_layer(m) is not None for m in _modules())


def test_no_import_cycle():
    graph = _graph()
    graph.pop("trajspin", None)          # the package root re-exports from everywhere
    assert _find_cycle(graph) is None


def test_no_module_imports_from_a_higher_layer():
    assert _upward(_graph()) == []


def test_no_imports_inside_functions_except_optional_dependencies():
    bad = []
    for m, p in _modules().items():
        external, internal = _imports(p, m, scope="local")
        bad += [(m, e) for e in external - OPTIONAL]
        bad += [(m, i) for i in internal if (m, i) not in LAZY_ALLOWED]
    assert bad == []


KERNEL_MODULES = sorted((PKG / "kernels").glob("*.py"))


@pytest.mark.parametrize("name", [f"trajspin.kernels.{p.stem}" for p in KERNEL_MODULES
                                  if p.stem != "__init__"])
def test_kernels_import_only_numerics_and_other_kernels(name):
    path = _modules()[name]
    external, internal = _imports(path, name)
    local_ext, local_int = _imports(path, name, scope="local")
    external |= local_ext
    internal |= local_int
    assert external <= KERNEL_ALLOWED, f"{name} imports {sorted(external - KERNEL_ALLOWED)}"
    assert all(i.startswith("trajspin.kernels") for i in internal), sorted(internal)


def test_only_the_mpi_runner_imports_mpi4py():
    users = {m for m, p in _modules().items()
             if "mpi4py" in _imports(p, m)[0] | _imports(p, m, scope="local")[0]}
    assert users == {"trajspin.runners.mpi"}
