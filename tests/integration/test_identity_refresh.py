"""Refresh-token sessions over HTTP: the cookie, rotation, replay, logout, the record."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
import pytest
from litestar.testing import TestClient

from iotledger.adapters.security.tokens import new_refresh_token, read_refresh_token
from iotledger.api.app import create_app
from iotledger.application.sessions import RefreshSession
from iotledger.bootstrap import App
from iotledger.domain.sessions import InvalidRefreshToken
from tests.support.identity import TELEMETRY_AUTH, Person, bearer, login_telemetry, register
from tests.support.ledger import event_count

REFRESH = f"{TELEMETRY_AUTH}/refresh"
LOGOUT = f"{TELEMETRY_AUTH}/logout"


@pytest.fixture
def person(client: TestClient[Any]) -> Person:
    return register(client, "telemetry")


def signed_in(client: TestClient[Any], person: Person) -> str:
    """Sign in by email; the refresh cookie the client now holds (and no other)."""
    client.cookies.clear()
    response = login_telemetry(client, person.email, person.password)
    assert response.status_code == 200
    return str(client.cookies["refresh_token"])


def refresh_with(client: TestClient[Any], cookie: str) -> Any:
    """Refresh presenting exactly this cookie, as a client that kept a copy would."""
    client.cookies.clear()
    client.cookies.set("refresh_token", cookie, domain="testserver.local", path=TELEMETRY_AUTH)
    return client.post(REFRESH)


def attributes(set_cookie: str) -> set[str]:
    """The attributes of a Set-Cookie header, which compare case-insensitively."""
    return {part.strip().lower() for part in set_cookie.split(";")[1:]}


def session_of(cookie: str) -> UUID:
    return UUID(cookie.partition(".")[0])


def test_sign_in_sets_a_hardened_refresh_cookie_for_the_auth_path_only(
    client: TestClient[Any], person: Person
) -> None:
    response = login_telemetry(client, person.email, person.password)
    assert response.headers["set-cookie"].startswith("refresh_token=")
    assert attributes(response.headers["set-cookie"]) == {
        "httponly",
        "samesite=strict",
        f"path={TELEMETRY_AUTH}",
        "max-age=2592000",
    }  # no "secure": the test settings say IOTLEDGER_COOKIE_SECURE=false


def test_the_refresh_cookie_is_secure_unless_configured_otherwise(
    services: App, person: Person
) -> None:
    settings = msgspec.structs.replace(services.settings, cookie_secure=True)
    with TestClient(create_app(dataclasses.replace(services, settings=settings))) as client:
        response = login_telemetry(client, person.email, person.password)
    assert "secure" in attributes(response.headers["set-cookie"])


def test_a_refresh_rotates_the_cookie_and_gives_a_working_access_token(
    client: TestClient[Any], person: Person
) -> None:
    first = signed_in(client, person)
    response = client.post(REFRESH)
    assert response.status_code == 200
    assert response.json()["expires_in"] == 3600
    second = str(client.cookies["refresh_token"])
    assert second != first
    assert session_of(second) == session_of(first)
    me = client.get(f"{TELEMETRY_AUTH}/me", headers=bearer(response.json()["access_token"]))
    assert me.json()["id"] == person.id
    assert refresh_with(client, second).status_code == 200


def test_a_replayed_refresh_cookie_fails_and_kills_its_successor(
    client: TestClient[Any], services: App, person: Person
) -> None:
    stolen = signed_in(client, person)
    assert client.post(REFRESH).status_code == 200
    successor = str(client.cookies["refresh_token"])
    replay = refresh_with(client, stolen)
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "INVALID_REFRESH_TOKEN"
    assert refresh_with(client, successor).status_code == 401
    events = list(services.ledger.events.get(session_of(stolen)))
    assert [type(e).__qualname__ for e in events] == [
        "Session.Issued",
        "Session.Rotated",
        "Session.ReuseDetected",
    ]
    assert [getattr(e, "by", None) for e in events] == [
        f"user:{person.id}",
        f"user:{person.id}",
        "system",
    ]


def test_another_sign_in_of_the_same_user_survives_a_replay_in_one_family(
    client: TestClient[Any], person: Person
) -> None:
    other = signed_in(client, person)
    stolen = signed_in(client, person)
    assert refresh_with(client, stolen).status_code == 200
    assert refresh_with(client, stolen).status_code == 401
    assert refresh_with(client, other).status_code == 200


@pytest.mark.parametrize(
    "cookie", [None, "", "garbage", "not-a-uuid.secret", "00000000-0000-4000-8000-000000000000.x"]
)
def test_a_refresh_without_a_valid_cookie_answers_401_and_stores_nothing(
    client: TestClient[Any], services: App, cookie: str | None
) -> None:
    before = event_count(services)
    client.cookies.clear()
    response = client.post(REFRESH) if cookie is None else refresh_with(client, cookie)
    assert response.status_code == 401
    assert response.json()["success"] is False
    assert event_count(services) == before


def test_logout_answers_204_clears_the_cookie_and_revokes_the_session(
    client: TestClient[Any], person: Person
) -> None:
    cookie = signed_in(client, person)
    response = client.post(LOGOUT)
    assert response.status_code == 204
    assert response.content == b""
    assert {"max-age=0", f"path={TELEMETRY_AUTH}"} <= attributes(response.headers["set-cookie"])
    assert "refresh_token" not in client.cookies
    assert refresh_with(client, cookie).status_code == 401


def test_logout_without_a_cookie_still_answers_204(client: TestClient[Any]) -> None:
    client.cookies.clear()
    assert client.post(LOGOUT).status_code == 204


def test_the_sessions_list_tells_who_signed_in_when_and_how_it_ended(
    client: TestClient[Any], person: Person
) -> None:
    replayed = signed_in(client, person)
    assert refresh_with(client, replayed).status_code == 200
    assert refresh_with(client, replayed).status_code == 401
    signed_in(client, person)
    access = login_telemetry(client, person.email, person.password).json()["access_token"]
    assert client.post(LOGOUT).status_code == 204
    sessions = client.get(f"{TELEMETRY_AUTH}/sessions", headers=bearer(access)).json()
    assert len(sessions) == 3
    ended = {s["id"]: (s["refreshes"], s["revoked_because"]) for s in sessions}
    assert ended[str(session_of(replayed))] == (1, "reuse")
    assert sorted(ended.values(), key=str) == sorted(
        [(1, "reuse"), (0, "logout"), (0, None)], key=str
    )
    assert all(s["user_id"] == person.id and s["issued_at"] for s in sessions)


def test_refreshes_racing_with_one_token_rotate_it_once_and_revoke_the_family(
    client: TestClient[Any], services: App, person: Person
) -> None:
    token = read_refresh_token(signed_in(client, person))
    assert token is not None

    def refresh(_: int) -> str:
        new = new_refresh_token(token.session_id)
        now = datetime.now(UTC)
        command = RefreshSession(token.session_id, token.hash, new.hash, now, now + timedelta(1))
        try:
            services.ledger.refresh_session(command)
        except InvalidRefreshToken:
            return "refused"
        return "rotated"

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(refresh, range(4)))
    assert outcomes == ["refused", "refused", "refused", "rotated"]
    events = [type(e).__qualname__ for e in services.ledger.events.get(token.session_id)]
    assert events == ["Session.Issued", "Session.Rotated", "Session.ReuseDetected"]
