"""Access tokens over HTTP: what each dialect accepts, and every kind of forgery refused."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from litestar.testing import TestClient

from iotledger.adapters.security.tokens import AUDIENCE, ISSUER, key_id
from iotledger.api.app import create_app
from iotledger.bootstrap import App
from tests.support.identity import (
    TELEMETRY_AUTH,
    Person,
    bearer,
    login_lambda,
    login_telemetry,
    register,
)

PROTECTED = {"lambda": "/protected", "telemetry": f"{TELEMETRY_AUTH}/me"}


@pytest.fixture(scope="module")
def member(services: App) -> Iterator[Person]:
    """One user for every forgery: the forged tokens name someone who exists."""
    with TestClient(create_app(services)) as client:
        yield register(client, "telemetry")


def b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], header: dict[str, Any]) -> str:
    return f"{b64({**header, 'alg': 'none'})}.{b64(claims)}."


def forge(kind: str, secret: str, person: Person) -> str:
    """A token that differs from a genuine one in exactly the way `kind` says."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": person.username,
        "user_id": person.id,
        "iat": now,
        "exp": now + 600,
    }
    header: dict[str, Any] = {"kid": key_id(secret), "typ": "at+jwt"}
    key, algorithm = secret, "HS256"
    match kind:
        case "alg none":
            return unsigned(claims, header)
        case "garbage":
            return "not-a-token"
        case "wrong signature":
            key = "not-the-secret-" + secret
        case "another algorithm":
            algorithm = "HS512"
        case "wrong audience":
            claims["aud"] = "someone-else"
        case "wrong issuer":
            claims["iss"] = "someone-else"
        case "expired":
            claims |= {"iat": now - 700, "exp": now - 100}
        case "no exp":
            del claims["exp"]
        case "unknown kid":
            header["kid"] = "0123456789abcdef"
        case "no type":
            del header["typ"]
    return jwt.encode(claims, key, algorithm=algorithm, headers=header)


FORGERIES = [
    "alg none",
    "garbage",
    "wrong signature",
    "another algorithm",
    "wrong audience",
    "wrong issuer",
    "expired",
    "no exp",
    "unknown kid",
    "no type",
]


@pytest.mark.parametrize("dialect", sorted(PROTECTED))
def test_a_genuine_token_built_like_the_forgeries_is_accepted(
    client: TestClient[Any], services: App, member: Person, dialect: str
) -> None:
    secret = services.settings.jwt_secret or ""
    response = client.get(PROTECTED[dialect], headers=bearer(forge("genuine", secret, member)))
    assert response.status_code == 200


@pytest.mark.parametrize("kind", FORGERIES)
@pytest.mark.parametrize("dialect", sorted(PROTECTED))
def test_a_forged_token_answers_401_in_the_dialects_body(
    client: TestClient[Any], services: App, member: Person, dialect: str, kind: str
) -> None:
    token = forge(kind, services.settings.jwt_secret or "", member)
    response = client.get(PROTECTED[dialect], headers=bearer(token))
    assert response.status_code == 401
    if dialect == "lambda":
        assert response.json() == {"error": "invalid credentials"}
    else:
        assert response.json()["success"] is False
        assert response.json()["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"}]
)
def test_a_request_without_a_bearer_token_answers_401_no_claims(
    client: TestClient[Any], headers: dict[str, str]
) -> None:
    assert client.get("/protected", headers=headers).json() == {"error": "no claims"}
    telemetry = client.get(f"{TELEMETRY_AUTH}/me", headers=headers)
    assert telemetry.status_code == 401
    assert telemetry.json()["error"] == {"code": "UNAUTHORIZED", "message": "no claims"}


def test_each_dialects_token_opens_the_other_dialects_protected_endpoints(
    client: TestClient[Any], member: Person
) -> None:
    lambda_token = login_lambda(client, member.username, member.password).json()["token"]
    telemetry_token = login_telemetry(client, member.email, member.password).json()["access_token"]
    for token in (lambda_token, telemetry_token):
        assert client.get("/protected", headers=bearer(token)).status_code == 200
        me = client.get(f"{TELEMETRY_AUTH}/me", headers=bearer(token))
        assert me.json() == {"id": member.id, "username": member.username, "email": member.email}


def test_the_lambda_token_lasts_24_hours_and_the_telemetry_token_one_hour(
    client: TestClient[Any], member: Person
) -> None:
    lambda_token = login_lambda(client, member.username, member.password).json()["token"]
    telemetry_token = login_telemetry(client, member.email, member.password).json()["access_token"]
    lifetimes = [
        claims["exp"] - claims["iat"]
        for claims in (
            jwt.decode(t, options={"verify_signature": False})
            for t in (lambda_token, telemetry_token)
        )
    ]
    assert lifetimes == [24 * 3600, 3600]
    claims = client.get("/protected", headers=bearer(lambda_token)).json()["claims"]
    assert claims == {"sub": member.username, "user_id": member.id, "exp": claims["exp"]}
    header = jwt.get_unverified_header(lambda_token)
    assert (header["alg"], header["typ"]) == ("HS256", "at+jwt")
    assert header["kid"]


@pytest.mark.parametrize("dialect", sorted(PROTECTED))
def test_a_token_that_was_accepted_is_refused_from_the_second_it_expires(
    client: TestClient[Any], services: App, member: Person, dialect: str
) -> None:
    """Tokens checked once are remembered; their expiry still holds to the second."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": member.username,
        "user_id": member.id,
        "iat": now,
        "exp": now + 2,
    }
    secret = services.settings.jwt_secret or ""
    header = {"kid": key_id(secret), "typ": "at+jwt"}
    token = jwt.encode(claims, secret, algorithm="HS256", headers=header)
    assert client.get(PROTECTED[dialect], headers=bearer(token)).status_code == 200
    assert client.get(PROTECTED[dialect], headers=bearer(token)).status_code == 200
    time.sleep(max(0.0, now + 2 - time.time()) + 0.05)
    assert client.get(PROTECTED[dialect], headers=bearer(token)).status_code == 401
