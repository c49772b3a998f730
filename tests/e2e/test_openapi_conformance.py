"""Every answer is one the OpenAPI document describes: its status, its content type,
its body's schema and its headers, for inputs schemathesis draws from the document.

The application and its database are this module's own (the fuzzing fixtures,
instantiated again here).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.test_fuzz_api import (  # noqa: F401 (fixtures, instantiated for this module)
    api_schema,
    fuzzed,
    node_id_for_schemathesis,
    schema,
    signed_in,
)

EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module:hypothesis.errors.HypothesisDeprecationWarning"
)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_is_one_the_document_describes(
    case: Any,
    signed_in: dict[str, str],  # noqa: F811 (the fixture imported above)
) -> None:
    response = case.call(headers=signed_in)
    case.validate_response(response, checks=CHECKS, headers=signed_in)
