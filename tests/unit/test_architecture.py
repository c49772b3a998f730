"""Dependencies point inward: the domain knows nothing of the edges.

The layers, innermost first (docs/architecture.md draws them):

    domain -> application -> projections -> adapters -> api -> bootstrap -> roles, cli

A package may import the ones before it, never one after it. `settings` (what the
process was told) may be read by the adapters and everything outward.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "iotledger"

OUTER = ("api", "bootstrap", "roles", "cli", "maintenance", "simulator")
# layer -> the iotledger packages and modules it must never import
FORBIDDEN = {
    "domain": ("application", "projections", "adapters", "settings", *OUTER),
    "application": ("projections", "adapters", "settings", *OUTER),
    "projections": ("adapters", "settings", *OUTER),
    "adapters": OUTER,
    "api": ("roles", "cli", "maintenance", "simulator"),
}
# Moved into their layer by the restructure; their ports are not yet drawn.
PENDING: dict[str, tuple[str, ...]] = {
    "projections/dispatcher.py": ("adapters",),
    "projections/device_checks.py": ("adapters",),
}
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
