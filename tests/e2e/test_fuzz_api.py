"""Fuzzing every operation of the OpenAPI document: no input ever answers 5xx.

Schemathesis reads the application's own `/schema/openapi.json` and calls each
operation in-process, as a signed-in user, with what it draws from the document
(valid and invalid inputs alike), on a database of its own: the inputs it draws
must not disturb the other tests. The draw is derandomized (the same cases every
run) and bounded so that the whole test takes two or three minutes on a small
machine (`pytest --durations` shows it); `IOTLEDGER_TEST_FUZZ_SCALE` draws more.
The answers' conformance to the document is test_openapi_conformance.py's.
"""

from __future__ import annotations

from typing import Any

from schemathesis.checks import not_a_server_error

from tests.support.fuzzing import MARKS, drawn, schema

MAX_EXAMPLES = 20  # about 2 min; 50 took 6 in CI (`pytest --durations`)

pytestmark = MARKS


@schema.parametrize()
@drawn(MAX_EXAMPLES)
def test_no_input_answers_a_server_error(case: Any, signed_in: dict[str, str]) -> None:
    response = case.call(headers=signed_in)
    case.validate_response(response, checks=[not_a_server_error], headers=signed_in)
