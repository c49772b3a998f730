"""Every answer is one the OpenAPI document describes: its status, its content type,
its body's schema and its headers, for inputs schemathesis draws from the document.

The application and its database are this module's own (the fuzzing fixtures of
`tests/e2e/conftest.py`, instantiated again for this module).
"""

from __future__ import annotations

from typing import Any

from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.fuzzing import MARKS, drawn, schema

EXAMPLES = 15  # about 1.7 min; 25 took 2.3 in CI (`pytest --durations`)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

pytestmark = MARKS


@schema.parametrize()
@drawn(EXAMPLES)
def test_every_answer_is_one_the_document_describes(
    case: Any,
    signed_in: dict[str, str],
) -> None:
    response = case.call(headers=signed_in)
    case.validate_response(response, checks=CHECKS, headers=signed_in)
