"""Running `iotledger` as a user would: as a command, in its own process.

Whatever such a process prints is kept, and shown with the test that fails
(`tests/support/outputs.py`); a passing test stays quiet.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from iotledger.settings import DatabaseUrl, MqttUrl
from tests.support.identity import unique
from tests.support.outputs import watch
from tests.support.waiting import eventually

COMMAND = str(Path(sys.executable).parent / "iotledger")


def environment(
    database_url: DatabaseUrl | None = None, mqtt_url: MqttUrl | None = None, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTLEDGER_")}
    if database_url is not None:
        env["IOTLEDGER_DATABASE_URL"] = str(database_url)
    if mqtt_url is not None:
        env["IOTLEDGER_MQTT_URL"] = str(mqtt_url)
    env.setdefault("IOTLEDGER_JWT_SECRET", "process-test-secret-of-at-least-32-bytes")
    env.setdefault("IOTLEDGER_DB_POOL_SIZE", "5")  # many processes share one PostgreSQL
    env.update(extra)
    return env


def run(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [COMMAND, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    name = f"iotledger {' '.join(args)} (exit {result.returncode})"
    watch(result, name, lambda: result.stdout + result.stderr, lambda: False)
    return result


class Server(subprocess.Popen[str]):
    """`iotledger ...` with everything it prints collected by a thread (a full pipe would
    stall it), for a failing test to show."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path | None) -> None:
        super().__init__(
            args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()
        name = f"iotledger {' '.join(args[1:])} (pid {self.pid})"
        watch(self, name, self.output, lambda: self.poll() is None)

    def _collect(self) -> None:
        assert self.stdout is not None
        for line in self.stdout:
            self._lines.append(line)

    def output(self) -> str:
        """Everything printed so far; all of it once the process has exited."""
        if self.poll() is not None:
            self._reader.join(10)
        return "".join(self._lines)


@contextmanager
def serving(*args: str, env: dict[str, str], cwd: Path | None = None) -> Iterator[Server]:
    """`iotledger serve ...` in the background; SIGTERM and a bounded wait when done."""
    process = Server([COMMAND, "serve", *args], env, cwd)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def stop(process: Server, timeout: float = 15) -> tuple[int, float, str]:
    """SIGTERM the process: its exit code, how long it took, and everything it printed."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout)
    return process.returncode, time.monotonic() - started, process.output()


def wait_for_http(base: str, process: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"iotledger exited with {process.returncode}:\n{process.output()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base}/health did not answer within {timeout}s")


def wait_until(
    predicate: Callable[[], object], timeout: float = 30, interval: float = 0.05
) -> None:
    """`eventually`, with the patience a process or a projection runner needs."""
    eventually(predicate, timeout, interval=interval)


def signed_in_device(base: str) -> tuple[dict[str, str], str]:
    """A new user of a served process, signed up and in over HTTP, with a device of its
    own: the user's headers and the device's id."""
    name = unique()
    account = {"username": name, "email": f"{name}@example.com", "password": "secret123"}
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.post("/api/v1/auth/register", json=account).status_code == 201
        login = client.post("/api/v1/auth/login", json=account)
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        device = client.post(
            "/api/v1/devices", json={"name": "boiler", "device_type": "sensor"}, headers=headers
        )
        assert device.status_code == 201, device.text
        return headers, device.json()["id"]
