"""Dependencies point inward: the domain knows nothing of the edges."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "iotledger"

# layer -> the iotledger layers it must never import
FORBIDDEN = {
    "domain": ("projections", "api", "adapters", "bootstrap", "serve", "cli", "maintenance"),
    "projections": ("api", "adapters", "bootstrap", "serve", "cli", "maintenance"),
    "adapters": ("api", "bootstrap", "serve", "cli", "maintenance"),
}
# third-party packages that would mean I/O inside the domain
DOMAIN_FORBIDDEN_LIBRARIES = ("psycopg", "psycopg_pool", "litestar", "gmqtt", "amqtt", "argon2")


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


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_never_imports_an_outer_layer(layer: str) -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in modules(layer)
        for name in imports_of(path)
        for outer in FORBIDDEN[layer]
        if name == f"iotledger.{outer}" or name.startswith(f"iotledger.{outer}.")
    ]
    assert modules(layer), f"layer {layer} has no modules"
    assert offenders == []


def test_the_domain_does_no_io() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in modules("domain")
        for name in imports_of(path)
        if name.split(".")[0] in DOMAIN_FORBIDDEN_LIBRARIES
    ]
    assert offenders == []
