"""Fuzzing every operation of the OpenAPI document: no input ever answers 5xx.

Schemathesis reads the application's own `/schema/openapi.json` and calls each
operation in-process, as a signed-in user, with what it draws from the document
(valid and invalid inputs alike), on a database of its own: the inputs it draws
must not disturb the other tests. The draw is derandomized (the same cases every
run) and bounded so that the whole test takes a minute or two on a small machine:
`pytest --durations` shows it. Response-schema conformance is not checked yet.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from litestar.testing import TestClient
from schemathesis.checks import not_a_server_error

from iotledger.api.app import create_app
from iotledger.settings import DatabaseUrl, MqttUrl, Settings
from tests.conftest import create_database, drop_database, register_and_login, start_services
from tests.support.mqtt import Adapter, LoopThread

MAX_EXAMPLES = 50
SEED = 11

pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module:hypothesis.errors.HypothesisDeprecationWarning"
)


@pytest.fixture(scope="module")
def fuzzed(
    settings: Settings, server_url: DatabaseUrl, mqtt_url: MqttUrl, mqtt_loop: LoopThread
) -> Iterator[tuple[Any, dict[str, str]]]:
    """The application `serve` runs, with its MQTT role, on a database and a base topic of
    its own; and a signed-in user."""
    url = create_database(server_url)
    topic = f"iotledger-fuzz-{uuid.uuid4().hex[:8]}"
    own = msgspec.structs.replace(settings, mqtt_topic=topic, db_pool_size=4)
    services = start_services(own, url)
    runners = services.runners()
    for runner in runners:
        runner.start()
    adapter = Adapter(mqtt_loop, services, mqtt_url, embedded=mqtt_url.port != 1883)
    services.publisher = adapter.role.link
    app = create_app(services)
    try:
        with TestClient(app) as client:
            yield app, register_and_login(client)
    finally:
        adapter.close()
        for runner in runners:
            runner.stop()
        services.close()
        drop_database(server_url, url)


@pytest.fixture(scope="module")
def api_schema(fuzzed: tuple[Any, dict[str, str]]) -> Any:
    app, _ = fuzzed
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    schema.config.seed = SEED
    # A live stream never ends by itself (tests/test_stream.py reads them as clients do).
    return schema.exclude(path_regex=r"/stream$")


@pytest.fixture(scope="module")
def signed_in(fuzzed: tuple[Any, dict[str, str]]) -> dict[str, str]:
    return fuzzed[1]


@pytest.fixture(autouse=True)
def node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Schemathesis 4.32 names each operation's subtest through `Node._nodeid`, which
    pytest 9 no longer sets: give it one to read."""
    request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_answers_a_server_error(case: Any, signed_in: dict[str, str]) -> None:
    response = case.call(headers=signed_in)
    case.validate_response(response, checks=[not_a_server_error], headers=signed_in)
