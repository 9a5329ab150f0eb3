"""The business layer's imports, read from the source: no cycle among services/, no face imported.

Faces depend on services, never the other way (STYLE.md, "The shape"): a service that needs
something a face has means the thing belongs in a service.
"""

import ast
from pathlib import Path

import pytest

import freshcom_customers

PACKAGE = Path(freshcom_customers.__file__).parent
SERVICES = sorted(path for path in (PACKAGE / "services").glob("*.py") if path.stem != "__init__")
FACES = ("api", "chec", "oauth2", "http", "cli")
# Face modules a service may still import, by service: none. Add one only with a reason.
ALLOWED_FACE_IMPORTS: dict[str, set[str]] = {}
# What a request carries reaches services as arguments (logins.Login takes the client address).
REQUEST_STATE = {"request", "g", "session"}


def imported(path: Path) -> set[str]:
    """The dotted names a module imports, anywhere in it; `from a import b` yields a and a.b."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, path)
            names |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return names


def _absolute(node: ast.ImportFrom, path: Path) -> str:
    if not node.level:
        return node.module or ""
    parts = ["freshcom_customers", *path.relative_to(PACKAGE).parent.parts]
    base = parts[: len(parts) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def service_graph() -> dict[str, set[str]]:
    """Each services module and the services modules it imports."""
    modules = {path.stem for path in SERVICES}
    prefix = "freshcom_customers.services."
    return {
        path.stem: {
            name.removeprefix(prefix).split(".")[0] for name in imported(path) if name.startswith(prefix)
        }
        & modules
        for path in SERVICES
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as the path that closes it (a, b, a), or None when it has none."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for neighbour in sorted(graph.get(node, ())):
            cycle = visit(neighbour, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return None

    return next(filter(None, (visit(node, []) for node in sorted(graph))), None)


def test_no_services_module_imports_another_in_a_cycle():
    assert find_cycle(service_graph()) is None


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
    ],
)
def test_the_cycle_finder_finds_what_there_is(graph, cycle):
    assert find_cycle(graph) == cycle


@pytest.mark.parametrize("path", SERVICES, ids=lambda path: path.stem)
def test_services_import_no_face(path):
    faces = {name for name in imported(path) if _is_face(name)}
    assert faces <= ALLOWED_FACE_IMPORTS.get(path.stem, set())


def _is_face(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "freshcom_customers" and len(parts) > 1 and parts[1] in FACES


@pytest.mark.parametrize("path", SERVICES, ids=lambda path: path.stem)
def test_services_read_no_request_state(path):
    assert not {f"flask.{name}" for name in REQUEST_STATE} & imported(path)


def test_user_primitives_depend_on_no_other_domain_service():
    # database holds session helpers, not a domain; passwords, one-time tokens and mail (the
    # notice of a changed password) are primitives too, and changes records what a change was
    # (a password changed, not rehashed) for the history and webhooks.
    assert service_graph()["users"] <= {"database", "passwords", "one_time_tokens", "mail", "changes"}
