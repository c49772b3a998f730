"""What the schemathesis modules share: the application's own OpenAPI document (the
`api_schema` fixture of tests/e2e/conftest.py) and how cases are drawn from it."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

MARKS = [
    pytest.mark.filterwarnings(
        "ignore:Do not use the `random` module:hypothesis.errors.HypothesisDeprecationWarning"
    ),
    pytest.mark.usefixtures("node_id_for_schemathesis"),
]
schema = schemathesis.pytest.from_fixture("api_schema")


def drawn(examples: int) -> settings:
    """The same `examples` cases every run, however long each takes."""
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
