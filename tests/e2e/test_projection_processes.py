"""Projections as operators run them, in processes: a projection process killed
mid-stream, and the command line that shows a stopped projection and skips its event."""

from __future__ import annotations

import json
import signal

from iotledger.bootstrap import App
from iotledger.domain.devices import FLEET
from iotledger.settings import MqttUrl
from tests.support.ledger import append_users, event_count, save_device
from tests.support.processes import environment, run, serving, wait_until


def test_a_projection_process_killed_mid_stream_resumes_without_loss_or_duplicates(
    quiet_services: App, mqtt_url: MqttUrl
) -> None:
    services = quiet_services
    total = 6000
    append_users(services, total)
    env = environment(services.database_url, mqtt_url)
    with serving("--role", "projections", env=env) as first:
        wait_until(lambda: (services.views.users.position() or 0) > 0, timeout=180, interval=0.005)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    stopped_at = services.views.users.position() or 0
    assert 0 < stopped_at < event_count(services), "the kill should land mid-stream"
    with serving("--role", "projections", env=env):
        wait_until(
            lambda: (services.views.users.position() or 0) == event_count(services), timeout=300
        )
    users = services.views.users.all_users()
    assert len(users) == total
    assert len({u.id for u in users}) == total


def test_the_operator_sees_the_stop_and_skips_the_event_from_the_command_line(
    quiet_services: App,
) -> None:
    services = quiet_services
    _, at = save_device(services, "bad\x00")
    later, _ = save_device(services, "later")
    env = environment(services.database_url)
    stopped = run("projections", "rebuild", "devices", env=env)
    assert stopped.returncode == 2
    assert f"skip devices --position {at}" in stopped.stderr
    shown_status = run("projections", "status", env=env)
    assert shown_status.returncode == 0, shown_status.stderr
    line = next(x for x in shown_status.stdout.splitlines() if x.startswith("devices"))
    assert f"stopped at {at}:" in line
    (row,) = [
        r
        for r in json.loads(run("projections", "status", "--json", env=env).stdout)
        if r["name"] == "devices"
    ]
    assert (row["state"], row["failing_at"]) == ("stopped", at)
    wrong = run("projections", "skip", "devices", "--position", str(at + 1), env=env)
    assert wrong.returncode == 2
    assert f"fails at {at}, not at {at + 1}" in wrong.stderr
    skipped = run("projections", "skip", "devices", "--position", str(at), env=env)
    assert skipped.returncode == 0, skipped.stderr
    again = run("projections", "resume", "devices", env=env)
    assert again.returncode == 2
    assert "no recorded failure" in again.stderr
    with services.projections.running(["devices"]):
        wait_until(lambda: services.views.devices.device(later, FLEET) is not None)
