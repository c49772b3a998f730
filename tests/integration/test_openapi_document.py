"""`/schema/openapi.json` tells the truth: who must sign in, and how every operation
fails, in its dialect's own error body.

The document's claims are checked against what the application answers: a protected
operation called without a token answers 401, and the error bodies the application
sends validate against the schemas the document gives them.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from litestar.testing import TestClient

from iotledger.api.app import create_app
from iotledger.bootstrap import App
from tests.support.identity import register_and_login

METHODS = ("get", "put", "post", "delete", "patch", "head")
PUBLIC = {
    ("GET", "/health"),
    ("HEAD", "/health"),
    ("GET", "/hello"),
    ("HEAD", "/hello"),
    ("GET", "/ready"),
    ("POST", "/register"),
    ("POST", "/login"),
    ("GET", "/devices"),
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
}
"""The operations both documents say anyone may call."""
DEVICE_CALLABLE = {
    ("POST", "/api/v1/devices/{device_id}/telemetry"),
    ("PATCH", "/api/v1/devices/{device_id}/commands/{command_id}"),
}
"""What a device may call with its Basic credentials, besides its owner's bearer token."""
OWN_BODIES = {("GET", "/health"), ("HEAD", "/health"), ("GET", "/ready")}
"""Their 503 is their own reply, not an error body."""

Client = TestClient[object]
Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture(scope="module")
def document(services: App) -> dict[str, Any]:
    with TestClient(create_app(services)) as client:
        response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = document["components"][kind][name]
    return node


def body_schema_name(document: dict[str, Any], response: dict[str, Any]) -> str | None:
    content = resolve(document, response).get("content") or {}
    schema = content.get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    return ref.rsplit("/", 1)[-1] or None


def dialect_body(path: str) -> str:
    return "TelemetryError" if path.startswith("/api/v1") else "LambdaError"


def test_every_documented_error_is_the_dialects_error_body(document: dict[str, Any]) -> None:
    checked = 0
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400 or (method, path) in OWN_BODIES or method == "HEAD":
                continue
            assert body_schema_name(document, response) == dialect_body(path), (method, path)
            checked += 1
    assert checked > 100


def test_the_error_bodies_are_the_dialects_shapes(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["LambdaError"]["required"] == ["error"]
    telemetry = schemas["TelemetryError"]
    assert set(telemetry["required"]) == {"success", "error"}
    assert telemetry["properties"]["success"] == {"enum": [False]}
    assert set(schemas["TelemetryErrorDetail"]["required"]) == {"code", "message"}


def test_litestars_own_error_body_is_documented_nowhere(document: dict[str, Any]) -> None:
    text = str(document)
    assert "status_code" not in text
    assert "extra" not in document["components"]["schemas"].get("LambdaError", {})


def test_the_bearer_scheme_is_a_jwt_and_devices_use_basic(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    bearer, basic = schemes["bearer"], schemes["basic"]
    assert bearer == bearer | {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert basic == basic | {"type": "http", "scheme": "basic"}


def test_protected_operations_require_a_token_or_credentials_and_public_ones_nothing(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document):
        expected: list[dict[str, list[str]]] | None = [{"bearer": []}]
        if (method, path) in PUBLIC:
            expected = None
        elif (method, path) in DEVICE_CALLABLE:
            expected = [{"bearer": []}, {"basic": []}]
        assert operation.get("security") == expected, (method, path)
        if expected is not None:
            assert "401" in operation["responses"], (method, path)


def test_a_protected_operation_called_without_a_token_answers_401_in_its_dialect(
    document: dict[str, Any], client: Client
) -> None:
    for method, path, operation in operations(document):
        if "security" not in operation:
            continue
        query = required_query(document, operation)
        response = client.request(method, concrete(path), params=query, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert_documented(document, operation, response.status_code, response.json())


def test_error_answers_validate_against_the_documented_schemas(
    document: dict[str, Any], client: Client
) -> None:
    headers = register_and_login(client)
    answers = {
        ("GET", "/api/v1/devices/{device_id}"): client.get(
            concrete("/api/v1/devices/{device_id}"), headers=headers
        ),
        ("GET", "/sensor-readings/{reading_id}"): client.get(
            "/sensor-readings/abc", headers=headers
        ),
        ("POST", "/api/v1/devices"): client.post("/api/v1/devices", json={}, headers=headers),
        ("POST", "/register"): client.post("/register", json={"username": 1}),
        ("GET", "/devices/{device_id}"): client.get(
            concrete("/devices/{device_id}"), headers=headers
        ),
    }
    for (method, path), response in answers.items():
        operation = document["paths"][path][method.lower()]
        assert response.status_code >= 400
        assert_documented(document, operation, response.status_code, response.json())


def test_an_mqtt_ping_is_answered_as_documented_whether_the_broker_takes_it_or_not(
    document: dict[str, Any], client: Client
) -> None:
    operation = document["paths"]["/mqttping"]["get"]
    assert "500" in operation["responses"]  # the Lambda document's answer: the broker refused
    response = client.get("/mqttping", headers=register_and_login(client))
    assert_documented(document, operation, response.status_code, response.json())


def test_every_operation_has_its_own_summary_and_operation_id(document: dict[str, Any]) -> None:
    found = list(operations(document))
    summaries = Counter(operation["summary"] for *_, operation in found)
    ids = Counter(operation["operationId"] for *_, operation in found)
    assert [s for s, n in summaries.items() if n > 1] == []
    assert [i for i, n in ids.items() if n > 1] == []
    sensors = document["paths"]["/sensors"]["get"]["summary"]
    assert sensors != document["paths"]["/actors"]["get"]["summary"]


def test_answers_without_a_body_document_none(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if status == "204" or method == "HEAD":
                assert "content" not in resolve(document, response), (method, path, status)


def test_a_sensor_readings_id_is_an_integer(document: dict[str, Any]) -> None:
    for operation in document["paths"]["/sensor-readings/{reading_id}"].values():
        (parameter,) = [p for p in operation["parameters"] if p["name"] == "reading_id"]
        assert parameter["schema"]["type"] == "integer"
        assert parameter["schema"]["maximum"] == 10**18  # exact, and what the server accepts


def test_rate_limited_and_unavailable_answers_document_retry_after(
    document: dict[str, Any],
) -> None:
    login = document["paths"]["/api/v1/auth/login"]["post"]["responses"]
    for status in ("429", "503"):
        assert "Retry-After" in resolve(document, login[status])["headers"]


def required_query(document: dict[str, Any], operation: dict[str, Any]) -> dict[str, str]:
    """A value for each required query parameter (its schema's first choice, else "x"):
    Litestar refuses a request that lacks one before it asks who is calling."""
    query = {}
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "query" and parameter.get("required"):
            schema = resolve(document, parameter.get("schema", {}))
            query[parameter["name"]] = str(schema.get("enum", ["x"])[0])
    return query


def concrete(path: str) -> str:
    """A path template with a value for each parameter: integers for readings, else UUIDs."""
    return re.sub(
        r"\{(\w+)\}",
        lambda m: "1" if m.group(1) == "reading_id" else str(uuid.uuid4()),
        path,
    )


def assert_documented(
    document: dict[str, Any], operation: dict[str, Any], status: int, body: Any
) -> None:
    response = resolve(document, operation["responses"][str(status)])
    schema = response["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**schema, "components": document["components"]})
