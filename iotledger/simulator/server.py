"""The simulator's side of the HTTP API: a user, devices with credentials, their readings.

It signs in through the Lambda dialect (`/register`, `/login`: a user name is enough)
and does everything else in the Device Telemetry dialect; the token opens both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import httpx
import msgspec

PAGE = 100
"""Readings per page when listing (the API's largest page)."""


class SimulatorError(Exception):
    """The server or the broker could not be reached, or refused: one line says which."""


class Credentials(NamedTuple):
    device_id: UUID
    username: str
    password: str


class Page(NamedTuple):
    readings: list[dict[str, Any]]
    cursor: str | None


class Server:
    """The API, as one user (once signed in, the user's token goes with every request)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def sign_in(self, username: str, password: str, *, new: bool) -> None:
        """Sign in, registering the user first when it is `new` or unknown to the server."""
        body = {"username": username, "password": password}
        if new:
            await self._call("POST", "/register", json=body)
        login = await self._call("POST", "/login", json=body, refused_ok=(401,))
        if login.status_code == 401:
            if new or (await self._register(body)).status_code == 409:
                raise SimulatorError(f"the server refused to sign in {username}: {_reason(login)}")
            login = await self._call("POST", "/login", json=body)
        self._client.headers["Authorization"] = f"Bearer {login.json()['token']}"

    async def _register(self, body: dict[str, str]) -> httpx.Response:
        return await self._call("POST", "/register", json=body, refused_ok=(409,))

    async def base_topic(self) -> str:
        """The server's base topic: `GET /mqttping` names it (and publishes a ping on it,
        which proves the server's own broker link)."""
        topic: str = (await self._call("GET", "/mqttping")).json()["topic"]
        return topic

    async def new_device(self, name: str) -> Credentials:
        device = {"name": name, "device_type": "sensor", "metadata": {"simulated": True}}
        device_id = (await self._call("POST", "/api/v1/devices", json=device)).json()["id"]
        issued = (await self._call("POST", f"/api/v1/devices/{device_id}/credentials")).json()
        return Credentials(UUID(device_id), issued["username"], issued["password"])

    async def telemetry(self, device_id: UUID, since: datetime, cursor: str | None) -> Page:
        """One page of a device's readings recorded at `since` or later."""
        params = {"limit": str(PAGE), "from": since.isoformat()}
        if cursor is not None:
            params["cursor"] = cursor
        answer = await self._call("GET", f"/api/v1/devices/{device_id}/telemetry", params=params)
        return Page(answer.json(), answer.headers.get("X-Next-Cursor"))

    async def _call(
        self, method: str, path: str, *, refused_ok: tuple[int, ...] = (), **request: Any
    ) -> httpx.Response:
        try:
            answer = await self._client.request(method, path, **request)
        except httpx.HTTPError as e:
            raise SimulatorError(
                f"cannot reach the server at {self._client.base_url}: {e or type(e).__name__}"
            ) from None
        if answer.is_success or answer.status_code in refused_ok:
            return answer
        raise SimulatorError(
            f"the server refused {method} {path}: {answer.status_code} {_reason(answer)}"
        )


def _reason(answer: httpx.Response) -> str:
    """The error's words in either dialect's body (`{"error": "..."}` or `{"error": {...}}`)."""
    try:
        error = msgspec.json.decode(answer.content).get("error")
    except (msgspec.DecodeError, AttributeError):
        return answer.reason_phrase
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(error or answer.reason_phrase)
