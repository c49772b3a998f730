"""`iotledger simulate` against a real `iotledger serve` on its embedded defaults
(embedded PostgreSQL, embedded broker admitting issued device credentials only).

CI runs a small fleet (20 devices at 200 readings/s for 5 s); the issue's full size
(`--devices 200 --rate 1000 --duration 30`) is run by hand: see docs/simulator.md.
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from tests.support.identity import unique
from tests.support.network import free_port
from tests.support.processes import COMMAND, environment, run, serving, wait_for_http, wait_until

PASSWORD = "secret-simulated"


class Served(NamedTuple):
    base: str
    broker: str


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """`iotledger serve` with no database or broker URL, in a working directory of its own."""
    port, broker_port = free_port(), free_port()
    env = environment(IOTLEDGER_PORT=str(port), IOTLEDGER_EMBEDDED_MQTT_PORT=str(broker_port))
    with (
        tempfile.TemporaryDirectory(prefix="iotledger-test-") as cwd,
        serving(env=env, cwd=Path(cwd)) as process,
    ):
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base, process, timeout=90)
        yield Served(base, f"mqtt://127.0.0.1:{broker_port}")


def simulate(served: Served, *args: str) -> list[str]:
    return [COMMAND, "simulate", "--url", served.base, "--mqtt", served.broker, *args]


def signed_in(base: str, username: str) -> dict[str, str]:
    body = {"username": username, "password": PASSWORD}
    assert httpx.post(f"{base}/register", json=body, timeout=10).status_code == 201
    token = httpx.post(f"{base}/login", json=body, timeout=10).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def devices_of(base: str, user: dict[str, str]) -> list[Any]:
    listed: list[Any] = httpx.get(
        f"{base}/api/v1/devices", params={"limit": 100}, headers=user, timeout=10
    ).json()
    return listed


def test_simulated_devices_publish_readings_that_become_queryable_and_answer_commands(
    served: Served,
) -> None:
    username = unique("sim")
    user = signed_in(served.base, username)
    args = ("--devices", "20", "--rate", "200", "--duration", "5")
    account = ("--username", username, "--password", PASSWORD)
    with subprocess.Popen(
        simulate(served, *args, *account), env=environment(), stdout=subprocess.PIPE, text=True
    ) as simulator:
        wait_until(lambda: devices_of(served.base, user), timeout=60)
        device = devices_of(served.base, user)[0]["id"]
        commands = f"{served.base}/api/v1/devices/{device}/commands"
        issued = httpx.post(commands, json={"command_name": "blink"}, headers=user, timeout=10)
        assert issued.status_code == 201, issued.text
        output, _ = simulator.communicate(timeout=120)
    assert simulator.returncode == 0, output
    assert "readings sent                      1,000" in output
    assert "every acknowledged reading queryable" in output
    assert "commands acknowledged                  1" in output
    command = httpx.get(f"{commands}/{issued.json()['id']}", headers=user, timeout=10).json()
    assert command["status"] == "executed"
    assert len(devices_of(served.base, user)) == 20


def test_ctrl_c_stops_the_simulation_and_still_prints_the_summary(served: Served) -> None:
    args = ("--devices", "3", "--rate", "30", "--duration", "600")
    with subprocess.Popen(
        simulate(served, *args), env=environment(), stdout=subprocess.PIPE, text=True
    ) as simulator:
        assert simulator.stdout is not None
        for line in simulator.stdout:
            if line.startswith("sending"):
                break
        time.sleep(1)
        simulator.send_signal(signal.SIGINT)
        output = simulator.communicate(timeout=60)[0]
    assert simulator.returncode == 130, output
    assert "interrupted" in output
    assert "every acknowledged reading queryable" in output


def test_a_wrong_password_is_one_line_saying_the_server_refused(served: Served) -> None:
    username = unique("sim")
    signed_in(served.base, username)
    result = subprocess.run(
        simulate(served, "--username", username, "--password", "not-the-password"),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert (
        result.stderr
        == f"iotledger: the server refused to sign in {username}: invalid credentials\n"
    )


def test_an_unreachable_server_is_one_clear_line() -> None:
    result = run("simulate", "--url", f"http://127.0.0.1:{free_port()}", env=environment())
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("iotledger: cannot reach the server at http://127.0.0.1:")


def test_an_unreachable_broker_is_one_clear_line(served: Served) -> None:
    broker = f"mqtt://127.0.0.1:{free_port()}"
    result = run("simulate", "--url", served.base, "--mqtt", broker, env=environment())
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"iotledger: cannot reach the MQTT broker at {broker}: "
        f"[Errno 111] Connect call failed ('127.0.0.1', {broker.rsplit(':', 1)[1]})"
    ]


def test_simulate_describes_itself() -> None:
    result = run("simulate", "--help", env=environment())
    assert result.returncode == 0
    assert "--devices" in result.stdout
