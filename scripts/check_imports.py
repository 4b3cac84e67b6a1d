"""Check that bot/ has no import cycles:  .venv/bin/python scripts/check_imports.py

Two ways, because each misses what the other sees:

- every module of bot/ is imported on its own in a fresh interpreter, so a cycle that breaks
  only when one particular module is imported first shows up as that module's ImportError
  (fresh as far as this project goes: the interpreters are forked from one that has imported
  the third-party packages bot/ uses, which otherwise take most of each import's time);
- the graph of module-level imports (not those inside functions or `if TYPE_CHECKING:`) is
  searched for cycles, which catches the ones that happen to work today.

`from package import submodule` counts as an edge to the submodule, not to the package:
a package's `__init__` importing its own submodules is how packages work, not a cycle.
"""

from __future__ import annotations

import ast
import importlib
import multiprocessing
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts[-1] != "__main__":  # runs the CLI when imported
            found[".".join(parts)] = path
    return found


def third_party(paths: Iterable[Path]) -> list[str]:
    """The modules outside this project and the standard library that these files import."""
    project = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module)
    return sorted(n for n in names
                  if n.split(".")[0] not in project and n.split(".")[0] not in sys.stdlib_module_names)


def imports_alone(name: str) -> str | None:
    try:
        importlib.import_module(name)
    except BaseException as error:
        return f"{type(error).__name__}: {error}"
    return None


def module_level_imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    edges: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in known)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package[: len(package) - node.level + 1], base]).strip(".")
                subs = [f"{base}.{a.name}" for a in node.names]
                edges.update(s for s in subs if s in known)
                if base in known and any(s not in known for s in subs):
                    edges.add(base)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
            elif isinstance(node, (ast.If, ast.Try, ast.With, ast.ClassDef)):
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(node, block, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(ast.parse(path.read_text()).body)
    edges.discard(name)
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def main() -> int:
    known = modules()
    sys.path.insert(0, str(ROOT))  # handed on to the forked interpreters
    # A fork server imports the third-party modules once, then forks a process per module of
    # bot/ (one task per process, so none has imported another module of bot/ before).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(third_party(known.values()))
    with ProcessPoolExecutor(8, mp_context=context, max_tasks_per_child=1) as pool:
        failures = [(n, e) for n, e in zip(known, pool.map(imports_alone, known), strict=True) if e]
    graph = {name: module_level_imports(name, path, known) for name, path in known.items()}
    loops = cycles(graph)
    for name, error in failures:
        print(f"import {name} on its own fails: {error}")
    for loop in loops:
        print("import cycle: " + " -> ".join(loop))
    print(f"{len(known)} modules: {len(failures)} fail alone, {len(loops)} cycles")
    return 1 if failures or loops else 0


if __name__ == "__main__":
    sys.exit(main())
