"""Check the layout rules of the trice package: imports point one way, modules and functions stay short,
and no module reaches into another's private names.

Run from the repository root: ``python scripts/check_layout.py [PACKAGE_DIR]`` (default ``trice``).
Prints one line per violation and a summary; exits 1 when there is any violation, else 0.

The import graph holds every import between the package's modules, at module level and inside
functions alike: an import moved into a function still runs, so it cannot be allowed to hide a cycle.
The package's subpackages are floors, in :data:`PACKAGE_ORDER` (docs/layout.md's table lists
them in the same order): a module imports only its own package and the packages below it, so the
packages form no circle and a lower one can be read, tested and reused without those above it.
Standard library only (``ast``), so CI and a bare interpreter can run it.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# trice's packages, bottom floor first: each imports only the packages before it. The shared
# vocabulary (core: the tool interface and call formats, templates and prompts, the example schema,
# paths and the run directory's file names) sits under the capabilities the phases use (retrieval,
# running a model, the tools, the tasks), then the phases in the order data flows, the orchestrator
# and the command on top.
PACKAGE_ORDER = (
    "utils", "core", "retrieval", "generation", "tools", "tasks",
    "data", "responses", "judge", "training", "stage1", "stage2",
    "export", "pipeline", "cli",
)  # fmt: skip


@dataclass(frozen=True)
class Violation:
    """One broken rule, located at ``path:line``."""

    kind: str
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.message}"


@dataclass
class Package:
    """The modules of one package tree: dotted name -> source file."""

    root: Path
    modules: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def scan(cls, root: Path) -> Package:
        """Every ``.py`` file under ``root``, named as Python would import it (``root`` sits on sys.path's parent)."""
        package = cls(root)
        top = root.resolve().parent
        for path in sorted(root.rglob("*.py")):
            parts = path.resolve().relative_to(top).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            package.modules[".".join(parts)] = path
        return package

    def is_package(self, module: str) -> bool:
        return self.modules[module].name == "__init__.py"

    def owner(self, name: str) -> str | None:
        """The longest prefix of dotted ``name`` that is one of our modules (None if outside the package)."""
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            prefix = ".".join(parts[:end])
            if prefix in self.modules:
                return prefix
        return None


@dataclass(frozen=True)
class Import:
    """One imported name: ``module`` is the dotted module named by the statement, ``name`` the
    ``from``-imported name (None for ``import module``)."""

    module: str
    name: str | None
    line: int


def inside(importer: str, package: str) -> bool:
    """Whether module ``importer`` is ``package`` or one of its submodules."""
    return importer == package or importer.startswith(package + ".")


def resolve_from(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from`` statement names, resolving relative imports against ``importer``."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(tree: ast.AST, importer: str, is_package: bool) -> Iterator[Import]:
    """Every import statement anywhere in ``tree`` (module level, functions, classes, branches)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, None, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            module = resolve_from(importer, is_package, node)
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)


def targets(package: Package, importer: str, imp: Import) -> set[str]:
    """The package modules that executing ``imp`` inside ``importer`` imports.

    ``from a import b`` imports the module ``a.b`` when there is one, else module ``a``. Importing a
    module runs its parent packages' ``__init__`` too, so those are edges as well, except packages
    that contain the importer: those are already being imported by the time the importer runs.
    """
    named = f"{imp.module}.{imp.name}" if imp.name and imp.name != "*" else imp.module
    owner = package.owner(named)
    if owner is None:
        return set()
    found = {owner}
    parts = owner.split(".")
    for end in range(1, len(parts)):
        parent = ".".join(parts[:end])
        if parent in package.modules and not inside(importer, parent):
            found.add(parent)
    found.discard(importer)
    return found


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(package: Package, importer: str, imports: list[Import]) -> Iterator[tuple[Import, str]]:
    """``from trice.m import _x`` where ``_x`` is ``trice.m``'s private name, and ``import trice.p._m``
    of a private module from outside ``trice.p`` (a private module is its package's own business)."""
    for imp in imports:
        if package.owner(imp.module) is None:
            continue
        parts = imp.module.split(".")
        for end in range(1, len(parts)):
            if is_private(parts[end]) and not inside(importer, ".".join(parts[:end])):
                yield imp, f"imports private module {'.'.join(parts[: end + 1])}"
                break
        if imp.name is None or not is_private(imp.name) or package.owner(imp.module) != imp.module:
            continue
        if f"{imp.module}.{imp.name}" in package.modules and inside(importer, imp.module):
            continue  # a package's own private submodule
        yield imp, f"imports private name {imp.name!r} of {imp.module}"


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one member (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def shortest_loop(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest import loop through the component's first member, first member repeated at the end:
    one concrete circle to break, where the whole component may be large."""
    start, members = component[0], set(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & members):
                if target == start:
                    loop = [start, node]
                    while loop[-1] != start:
                        loop.append(came_from[loop[-1]])
                    return [start, *reversed(loop[1:-1]), start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"{start} is in a strongly connected component but on no loop")


def long_functions(tree: ast.AST, path: Path, limit: int) -> Iterator[Violation]:
    """Functions (methods and nested ones too) longer than ``limit`` lines, decorators not counted."""

    def visit(node: ast.AST, prefix: str) -> Iterator[Violation]:
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                length = child.end_lineno - child.lineno + 1
                if length > limit:
                    yield Violation("long-function", path, child.lineno, f"{name} is {length} lines (max {limit})")
                name += "."
            elif isinstance(child, ast.ClassDef):
                name = f"{prefix}{child.name}."
            yield from visit(child, name)

    yield from visit(tree, "")


ENTRY_POINT = "__main__"  # the root package's ``python -m`` module, which runs the command on the top floor


def floor_of(module: str) -> str | None:
    """The subpackage (floor) a dotted module name belongs to; None for the root package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def floor_violations(package: Package, graph: dict[str, set[str]], first_line: dict[tuple[str, str], int], order: Sequence[str]) -> Iterator[Violation]:
    """A subpackage missing from ``order``, and every import of a package later in ``order`` than
    the importer's (the root package's own ``__init__`` counts as below every floor)."""
    rank = {name: i for i, name in enumerate(order)} | {ENTRY_POINT: len(order)}  # ``python -m``'s module: above every floor
    floors = sorted({f for f in map(floor_of, package.modules) if f is not None and f != ENTRY_POINT})
    for name in floors:
        if name not in rank:
            where = package.modules.get(f"{package.root.name}.{name}") or package.root / "__init__.py"
            yield Violation("unplaced-package", where, 1, f"{name} is not in the package order {list(order)}; place it on its floor")
    for module in sorted(graph):
        here = floor_of(module)
        named: dict[tuple[str, int], str] = {}  # one statement, one floor: its deepest module (not the parents it runs)
        for target in graph[module]:
            there = floor_of(target)
            if here == there or there is None or there not in rank or (here is not None and here not in rank):
                continue
            if here is None or rank[there] > rank[here]:
                key = (there, first_line[module, target])
                named[key] = max(named.get(key, target), target, key=len)
        for (there, line), target in sorted(named.items(), key=lambda item: item[0][1]):
            yield Violation("upward-import", package.modules[module], line, f"{module} ({here or 'root'}) imports {target} ({there}), a floor above it")


def check(root: Path, max_module: int = MAX_MODULE_LINES, max_function: int = MAX_FUNCTION_LINES, order: Sequence[str] = ()) -> list[Violation]:
    """Every layout violation in the package at ``root``; ``order`` lists its subpackages bottom
    first (empty: no floors, only the rules that hold for any package)."""
    package = Package.scan(root)
    graph: dict[str, set[str]] = {module: set() for module in package.modules}
    first_line: dict[tuple[str, str], int] = {}
    violations: list[Violation] = []
    for module, path in package.modules.items():
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
        lines = len(source.splitlines())
        if lines > max_module:
            violations.append(Violation("long-module", path, 1, f"{module} is {lines} lines (max {max_module})"))
        violations.extend(long_functions(tree, path, max_function))
        imports = list(imports_of(tree, module, package.is_package(module)))
        for imp in imports:
            for target in targets(package, module, imp):
                graph[module].add(target)
                first_line.setdefault((module, target), imp.line)
        violations.extend(Violation("private-import", path, imp.line, why) for imp, why in private_imports(package, module, imports))
    if order:
        violations.extend(floor_violations(package, graph, first_line, order))
    for component in strongly_connected(graph):
        loop = shortest_loop(graph, component)
        steps = " -> ".join(f"{target} (line {first_line[source, target]})" for source, target in zip(loop, loop[1:]))
        violations.append(
            Violation(
                "import-cycle",
                package.modules[loop[0]],
                first_line[loop[0], loop[1]],
                f"{len(component)} modules import each other: {', '.join(component)}; e.g. {loop[0]} -> {steps}",
            )
        )
    return violations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="trice", type=Path, help="package directory to check (default: trice)")
    parser.add_argument("--max-module-lines", type=int, default=MAX_MODULE_LINES)
    parser.add_argument("--max-function-lines", type=int, default=MAX_FUNCTION_LINES)
    parser.add_argument(
        "--order", default=",".join(PACKAGE_ORDER),
        help="the subpackages bottom first, comma-separated (default: trice's); empty for no floors",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not (args.root / "__init__.py").is_file():
        parser.error(f"{args.root} is not a package directory")
    order = [name for name in args.order.split(",") if name]
    violations = check(args.root, args.max_module_lines, args.max_function_lines, order)
    for violation in violations:
        print(violation)
    kinds = sorted({v.kind for v in violations})
    counts = ", ".join(f"{sum(v.kind == k for v in violations)} {k}" for k in kinds)
    print(f"check_layout: {len(violations)} violation(s) in {args.root}" + (f" ({counts})" if counts else ""))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
