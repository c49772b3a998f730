"""Running `iotledger` as a user would: as a command, in its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from iotledger.adapters.settings import DatabaseUrl, MqttUrl

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
    env.update(extra)
    return env


def run(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def serving(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> Iterator[subprocess.Popen[str]]:
    """`iotledger serve ...` in the background; SIGTERM and a bounded wait when done."""
    process = subprocess.Popen(
        [COMMAND, "serve", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
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


def stop(process: subprocess.Popen[str], timeout: float = 15) -> tuple[int, float, str]:
    """SIGTERM the process: its exit code, how long it took, and everything it printed."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, time.monotonic() - started, output


def wait_for_http(base: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"iotledger exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base}/health did not answer within {timeout}s")


def wait_until(predicate: object, timeout: float = 30, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise AssertionError("condition not reached in time")
