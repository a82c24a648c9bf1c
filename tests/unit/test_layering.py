"""The import graph of src/ keeps the layers of docs/architecture.md.

Parsed with ``ast`` (every ``import``, module-level or inside a function; ``if TYPE_CHECKING:`` blocks are
skipped, as they never run): no import cycle at all; the engine (relaying/, consuming/, broker/, core/)
never imports up to ops/ or the front-ends; only broker/transport.py imports stomp.py; inside relaying/
only store.py (the relay's queries) and bulk.py (the outbox *write* of decorated saves, which runs in the
caller's transaction, not a relay query) touch the outbox tables.
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterator

SRC = pathlib.Path(__file__).resolve().parents[2] / "src"
PACKAGE = "django_outbox_pattern"
ENGINE = ("relaying", "consuming", "broker", "core")
ABOVE_ENGINE = (
    f"{PACKAGE}.ops",
    f"{PACKAGE}.admin",
    f"{PACKAGE}.checks",
    f"{PACKAGE}.views",
    f"{PACKAGE}.management",
    "outboxctl",
)


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith("TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if _is_type_checking(node):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        else:
            yield from _import_nodes(node)


def imports_of(name: str) -> set[str]:
    """Every module ``name`` imports (``from a import b`` counts as ``a.b`` when that is a module)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            parent = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parent, base] if base else parent)
        for alias in node.names:
            full = f"{base}.{alias.name}"
            found.add(full if full in MODULES else base)
    return found - {name}


GRAPH = {name: {m for m in imports_of(name) if m in MODULES} for name in MODULES}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(GRAPH[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def _in(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_graph_is_read() -> None:
    assert f"{PACKAGE}.relaying.relay" in GRAPH[f"{PACKAGE}.relaying.assembly"]
    assert f"{PACKAGE}.core.observer" in GRAPH[f"{PACKAGE}.relaying.relay"]
    assert f"{PACKAGE}.relaying.notify" in GRAPH[f"{PACKAGE}.wiring"]  # a function-level import counts


def test_there_is_no_import_cycle() -> None:
    assert _cycles() == []


def test_the_engine_never_imports_up() -> None:
    engine = tuple(f"{PACKAGE}.{sub}" for sub in ENGINE)
    wrong = {
        (module, imported)
        for module, imported_set in GRAPH.items()
        if _in(module, engine)
        for imported in imported_set
        if _in(imported, ABOVE_ENGINE)
    }
    assert wrong == set()


def test_only_the_transport_imports_stomp() -> None:
    importers = {
        module
        for module in MODULES
        if any(m == "stomp" or m.startswith("stomp.") for m in imports_of(module))
    }
    assert importers == {f"{PACKAGE}.broker.transport"}


def _touches_tables(path: pathlib.Path) -> set[str]:
    """What in a module queries tables: ORM managers (``.objects``), raw cursors, the model classes."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in ("objects", "cursor", "execute", "raw"):
            found.add(node.attr)
        if isinstance(node, ast.ImportFrom) and node.module == f"{PACKAGE}.models":
            found.add("models")
    return found


def test_only_the_store_and_the_bulk_write_touch_the_outbox_in_relaying() -> None:
    relaying = {
        name: _touches_tables(path)
        for name, path in MODULES.items()
        if name.startswith(f"{PACKAGE}.relaying.")
    }
    touching = {name.rpartition(".")[2] for name, found in relaying.items() if found}
    # notify.py runs only pg_notify / LISTEN on its own connection: no outbox table, checked below
    assert touching == {"store", "bulk", "notify"}, relaying
    assert "objects" not in relaying[f"{PACKAGE}.relaying.notify"]
    tree = ast.parse(MODULES[f"{PACKAGE}.relaying.notify"].read_text())
    statements = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and any(
            verb in node.value.upper() for verb in ("SELECT ", "LISTEN ", "UPDATE ", "INSERT ", "DELETE ")
        )
    ]
    assert statements and not any("published" in sql.lower() for sql in statements), statements
