"""Several processes as one system: API processes sharing a port, projections elsewhere."""

from __future__ import annotations

import httpx

from tests.support.processes import run, serving, signed_in_device, stop, wait_for_http


def test_api_processes_share_a_port_and_every_reading_is_read_back_at_once(
    migrated: tuple[int, dict[str, str]],
) -> None:
    port, env = migrated
    shared = {**env, "IOTLEDGER_REUSE_PORT": "true"}
    base = f"http://127.0.0.1:{port}"
    with (
        serving("--role", "projections", env=env) as projections,
        serving("--role", "api", env=shared) as first,
        serving("--role", "api", env=shared) as second,
    ):
        wait_for_http(base, first)
        wait_for_http(base, second)
        headers, device = signed_in_device(base)
        telemetry = f"{base}/api/v1/devices/{device}/telemetry"
        for n in range(40):
            # A new connection each time: the kernel hands it to either process, and the
            # readings projection runs in a third one.
            posted = httpx.post(
                telemetry,
                json={"telemetry_type": "temperature", "payload": {"celsius": n}},
                headers=headers,
                timeout=10,
            )
            assert posted.status_code == 201, posted.text
            newest = httpx.get(f"{telemetry}?limit=1", headers=headers, timeout=10).json()
            assert [r["id"] for r in newest] == [posted.json()["id"]]
            latest = httpx.get(f"{telemetry}/latest", headers=headers, timeout=10).json()
            assert latest[0]["payload"] == {"celsius": n}
        assert first.poll() is None
        assert second.poll() is None
        for process in (first, second, projections):
            code, _, output = stop(process)
            assert code == 0, output


def test_without_reuse_port_a_second_api_process_says_the_port_is_taken(
    migrated: tuple[int, dict[str, str]],
) -> None:
    port, env = migrated
    with serving("--role", "api", env=env) as first:
        wait_for_http(f"http://127.0.0.1:{port}", first)
        second = run("serve", "--role", "api", env=env, timeout=60)
    assert second.returncode == 2
    assert second.stderr.strip().splitlines()[-1] == (
        f"iotledger: IOTLEDGER_PORT: cannot listen on 127.0.0.1:{port}"
        " (address in use or not permitted)"
    )
