"""Dependencies point inward: the domain knows nothing of the edges.

The layers, innermost first (docs/architecture.md draws them):

    domain -> application -> projections -> adapters -> api -> bootstrap -> roles, cli

A package may import the ones before it, never one after it. `settings` (what the
process was told) may be read by the adapters and everything outward.

The tests keep rules of their own: a test module imports from `tests` only its support
package (shared fixtures live in `conftest.py` files), and the unit tier needs neither
PostgreSQL, nor a broker, nor a process.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "iotledger"
TESTS = PACKAGE.parent / "tests"

OUTER = ("api", "bootstrap", "roles", "cli", "maintenance", "simulator")
# layer -> the iotledger packages and modules it must never import
FORBIDDEN = {
    "domain": ("application", "projections", "adapters", "settings", *OUTER),
    "application": ("projections", "adapters", "settings", *OUTER),
    "projections": ("adapters", "settings", *OUTER),
    "adapters": OUTER,
    "api": ("bootstrap", "roles", "cli", "maintenance", "simulator"),
}
# Modules let off a rule until their ports are drawn (none now: keep it that way).
PENDING: dict[str, tuple[str, ...]] = {}
# third-party packages that would mean I/O inside the domain or the application
PURE_FORBIDDEN_LIBRARIES = ("psycopg", "psycopg_pool", "litestar", "gmqtt", "amqtt", "argon2")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def is_in(name: str, package: str) -> bool:
    return name == f"iotledger.{package}" or name.startswith(f"iotledger.{package}.")


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_never_imports_an_outer_layer(layer: str) -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in modules(layer)
        for name in imports_of(path)
        for outer in FORBIDDEN[layer]
        if is_in(name, outer) and outer not in PENDING.get(str(path.relative_to(PACKAGE)), ())
    ]
    assert modules(layer), f"layer {layer} has no modules"
    assert offenders == []


@pytest.mark.parametrize("layer", ["domain", "application"])
def test_the_domain_and_the_services_do_no_io(layer: str) -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in modules(layer)
        for name in imports_of(path)
        if name.split(".")[0] in PURE_FORBIDDEN_LIBRARIES
    ]
    assert offenders == []


def test_the_pending_exemptions_are_still_needed() -> None:
    """An exemption that no longer excuses anything is removed, not kept."""
    stale = [
        f"{module} no longer imports {package}"
        for module, packages in PENDING.items()
        for package in packages
        if not any(is_in(name, package) for name in imports_of(PACKAGE / module))
    ]
    assert stale == []


# A controller module: a module of a dialect's endpoints (under `api/telemetry` or
# `api/lambda_iot`) that declares route handlers. What two of them share (wire types,
# lookups, a handler both dialects serve alike) lives in a module that is no controller.
DIALECTS = ("api/telemetry", "api/lambda_iot")
ROUTE_DECORATORS = frozenset({"get", "post", "put", "patch", "delete", "head", "route"})


def declares_routes(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                called = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(called, ast.Name) and called.id in ROUTE_DECORATORS:
                    return True
    return False


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def modules_imported_by(path: Path) -> set[str]:
    """`imports_of`, and each name a `from package import name` takes (it may be a module)."""
    names = imports_of(path)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_controller_imports_another_controller() -> None:
    controllers = {
        module_name(path): path
        for dialect in DIALECTS
        for path in modules(dialect)
        if declares_routes(path)
    }
    offenders = [
        f"{name} imports {other}"
        for name, path in controllers.items()
        for other in modules_imported_by(path)
        if other in controllers and other != name
    ]
    assert len(controllers) > len(DIALECTS), "the dialects' controllers were not found"
    assert offenders == []


# What the unit tier may not import: the ways to PostgreSQL, a broker and processes.
OUTSIDE_THE_UNIT_TIER = (
    "psycopg",
    "psycopg_pool",
    "litestar.testing",
    "tests.support.databases",
    "tests.support.dynsec",
    "tests.support.faults",
    "tests.support.mqtt",
    "tests.support.processes",
    "tests.support.tls",
)
PURE_PARTS = ("psycopg.conninfo",)  # parses a connection string; connects to nothing


def within(name: str, modules: tuple[str, ...]) -> bool:
    return any(name == module or name.startswith(f"{module}.") for module in modules)


def imports_of_other_tests(path: Path) -> set[str]:
    """What `path` imports from the tests, their support package aside."""
    return {
        name
        for name in modules_imported_by(path)
        if within(name, ("tests",)) and not within(name, ("tests.support",))
    }


def fixtures_of(path: Path) -> set[str]:
    return {
        node.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef)
        and any("fixture" in ast.unparse(decorator) for decorator in node.decorator_list)
    }


def parameters_of(path: Path) -> set[str]:
    """Every parameter of every function in `path`: the fixtures its tests ask for, and
    more (enough to tell a fixture that must not be there)."""
    return {
        argument.arg
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef)
        for argument in node.args.args
    }


def test_a_test_module_imports_nothing_of_the_tests_but_their_support() -> None:
    modules = sorted(TESTS.rglob("test_*.py"))
    offenders = [
        f"{path.relative_to(TESTS.parent)} imports {name}"
        for path in modules
        for name in sorted(imports_of_other_tests(path))
    ]
    assert modules, "no test modules found"
    assert offenders == []


def test_a_test_module_that_imports_another_is_seen(tmp_path: Path) -> None:
    module = tmp_path / "test_a.py"
    module.write_text("from tests.integration.test_b import helper\nfrom tests.support import x\n")
    assert imports_of_other_tests(module) == {
        "tests.integration.test_b",
        "tests.integration.test_b.helper",
    }


def test_the_unit_tier_needs_no_database_broker_or_process() -> None:
    shared = set().union(*(fixtures_of(conftest) for conftest in TESTS.rglob("conftest.py")))
    imports, fixtures = [], []
    for path in sorted((TESTS / "unit").rglob("test_*.py")):
        module = path.relative_to(TESTS.parent)
        imports += [
            f"{module} imports {name}"
            for name in sorted(imports_of(path))
            if within(name, OUTSIDE_THE_UNIT_TIER) and not within(name, PURE_PARTS)
        ]
        own = parameters_of(path) - fixtures_of(path)
        fixtures += [f"{module} asks for {name}" for name in sorted(own & shared)]
    assert shared >= {"services", "client", "mqtt_adapter", "migrated"}
    assert imports == []
    assert fixtures == []


# A library's private module (a name with a leading underscore) is imported in one
# module of ours only, each with a test that pins what it relies on.
PRIVATE_OWNERS = {"litestar": "iotledger/api/litestar_private.py"}


def test_a_librarys_private_api_is_used_in_its_one_module() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for name in imports_of(path)
        if not name.startswith("iotledger")
        and any(part.startswith("_") for part in name.split(".")[1:])
        and PRIVATE_OWNERS.get(name.split(".")[0]) != str(path.relative_to(PACKAGE.parent))
    ]
    assert offenders == []
