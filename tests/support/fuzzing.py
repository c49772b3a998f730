"""What the schemathesis modules share: the application's own OpenAPI document (the
`api_schema` fixture of tests/e2e/conftest.py) and how cases are drawn from it."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

MARKS = [
    pytest.mark.filterwarnings(
        "ignore:Do not use the `random` module:hypothesis.errors.HypothesisDeprecationWarning"
    ),
    pytest.mark.usefixtures("node_id_for_schemathesis"),
]
# A live stream never ends by itself (tests/e2e/test_stream.py reads them as clients do).
# Left out here, not on the fixture's schema: schemathesis (4.32) applies the filters of
# this lazy schema to the fixture's, and drops the fixture's own.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path_regex=r"/stream$")


SCALE = float(os.environ.get("IOTLEDGER_TEST_FUZZ_SCALE", "1"))
"""More cases than CI draws, for a longer hunt: `IOTLEDGER_TEST_FUZZ_SCALE=10 pytest ...`."""


def drawn(examples: int) -> settings:
    """The same `examples` cases every run (times `SCALE`), however long each takes."""
    return settings(
        max_examples=max(1, round(examples * SCALE)),
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
