"""The package's import graph has no cycle: every import counts, at any depth in a module.

Imports inside functions count (they run on first call). Imports under `if TYPE_CHECKING:`
never run, so the runtime graph leaves them out; the frontend test counts them too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import apify_magic

PACKAGE = Path(apify_magic.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(tree: ast.AST, typing_only: bool) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        if typing_only or not _is_type_checking(node):
            todo.extend(ast.iter_child_nodes(node))
    return found


def import_graph(typing_only: bool = False) -> dict[str, set[str]]:
    """Module -> the package modules it imports, at top level and in functions.

    With `typing_only`, also those imported only for type checking."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path)), typing_only):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                # `from apify_magic import body` imports the module apify_magic.body
                targets = [f"{base}.{alias.name}" for alias in node.names
                           if f"{base}.{alias.name}" in modules] or [base]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                # A module importing its own package's __init__ is not a cycle we mean:
                # __init__ imports submodules only lazily, inside functions.
                if target and target != name and target != "apify_magic":
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert "apify_magic.session" in graph["apify_magic.magic"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_run_layer_module_imports_a_frontend() -> None:
    graph = import_graph(typing_only=True)
    frontends = {"apify_magic.magic", "apify_magic.panel", "apify_magic.jobs"}
    for name, imported in graph.items():
        if name not in frontends and name != "apify_magic":
            assert not imported & frontends, f"{name} imports {imported & frontends}"
    assert "apify_magic.magic" not in graph["apify_magic.panel"]
    for one in frontends - {"apify_magic.magic"}:  # the magic is the top: it starts them
        assert not graph[one] & frontends, f"{one} imports {graph[one] & frontends}"
