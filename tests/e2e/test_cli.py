"""The command line as an operator meets it: help, bad settings, serve, roles, SIGTERM."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from iotledger.settings import DatabaseUrl, MqttUrl
from tests.support.identity import unique
from tests.support.network import free_port
from tests.support.processes import environment, run, serving, stop, wait_for_http, wait_until


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("serve",),
        ("migrate",),
        ("projections",),
        ("projections", "rebuild"),
        ("projections", "status"),
        ("projections", "resume"),
        ("projections", "skip"),
    ],
)
def test_every_command_describes_itself(args: tuple[str, ...]) -> None:
    result = run(*args, "--help", env=environment())
    assert result.returncode == 0
    assert "usage: iotledger" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("IOTLEDGER_PORT", "99999"),
        ("IOTLEDGER_DATABASE_URL", "mysql://nobody@localhost/x"),
        ("IOTLEDGER_MQTT_URL", "http://broker"),
        ("IOTLEDGER_DEVICE_CHECK_INTERVAL", "soon"),
        ("IOTLEDGER_COOKIE_SECURE", "perhaps"),
    ],
)
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(variable: str, value: str) -> None:
    result = run("serve", env=environment(**{variable: value}), timeout=30)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_an_unreachable_database_is_one_line_naming_the_setting() -> None:
    env = environment(IOTLEDGER_DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing")
    result = run("serve", env=env, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("iotledger: IOTLEDGER_DATABASE_URL")
    assert "Traceback" not in result.stderr


def sign_up_and_in(base: str) -> None:
    username = unique()
    body = {"username": username, "password": "secret123"}
    assert httpx.post(f"{base}/register", json=body, timeout=10).status_code == 201
    login = httpx.post(f"{base}/login", json=body, timeout=10)
    assert login.status_code == 200, login.text
    assert "token" in login.json()


def test_serve_runs_everything_in_one_process_and_stops_on_sigterm(
    own_database: DatabaseUrl, mqtt_url: MqttUrl
) -> None:
    port = free_port()
    env = environment(own_database, mqtt_url, IOTLEDGER_PORT=str(port))
    with serving(env=env) as process:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base, process)
        sign_up_and_in(base)
        code, seconds, output = stop(process)
    assert code == 0, output
    assert seconds < 10
    assert "Traceback" not in output


def test_api_and_projections_as_two_processes_serve_the_same_slice(
    migrated: tuple[int, dict[str, str]],
) -> None:
    port, env = migrated
    with (
        serving("--role", "projections", env=env) as projections,
        serving("--role", "api", env=env) as api,
    ):
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base, api)
        sign_up_and_in(base)  # the login reads the users view the other process wrote
        assert stop(api)[0] == 0
        assert stop(projections)[0] == 0


def test_a_single_role_refuses_to_start_on_an_unmigrated_database(
    own_database: DatabaseUrl, mqtt_url: MqttUrl
) -> None:
    result = run("serve", "--role", "api", env=environment(own_database, mqtt_url), timeout=60)
    assert result.returncode != 0
    assert "iotledger migrate" in result.stderr.strip().splitlines()[-1]


def test_with_no_configuration_serve_starts_embedded_postgres_and_broker(outside_tmp: Path) -> None:
    port, broker_port = free_port(), free_port()
    env = embedded_env(broker_port, port)
    with serving(env=env, cwd=outside_tmp) as process:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base, process, timeout=90)
        sign_up_and_in(base)
        code, seconds, output = stop(process, timeout=30)
    assert code == 0, output
    assert seconds < 15
    assert "embedded PostgreSQL" in output
    assert "embedded MQTT broker" in output
    assert (outside_tmp / "var" / "postgres").is_dir()
    assert (outside_tmp / "var" / "jwt_secret").is_file()
    assert not postgres_running_in(outside_tmp)
    assert port_is_free(broker_port)


def postgres_running_in(directory: Path) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "postgres" in text and str(directory) in text:
            return True
    return False


def port_is_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_projections_status_prints_each_projection_with_its_lag(own_database: DatabaseUrl) -> None:
    env = environment(own_database)
    assert run("migrate", env=env).returncode == 0
    result = run("projections", "status", env=env)
    assert result.returncode == 0, result.stderr
    assert "users" in result.stdout
    assert "lag" in result.stdout


def test_projections_rebuild_of_an_unknown_name_is_one_clear_line(
    own_database: DatabaseUrl,
) -> None:
    result = run("projections", "rebuild", "nonsense", env=environment(own_database))
    assert result.returncode != 0
    assert "unknown nonsense" in result.stderr


def embedded_env(broker_port: int, port: int) -> dict[str, str]:
    env = environment(IOTLEDGER_PORT=str(port), IOTLEDGER_EMBEDDED_MQTT_PORT=str(broker_port))
    del env["IOTLEDGER_JWT_SECRET"]
    return env


def test_serve_after_a_sigkill_takes_over_the_orphaned_postgres_and_stops_it(
    outside_tmp: Path,
) -> None:
    port, broker_port = free_port(), free_port()
    env, base = embedded_env(broker_port, port), f"http://127.0.0.1:{port}"
    with serving(env=env, cwd=outside_tmp) as killed:
        wait_for_http(base, killed, timeout=90)
        killed.kill()
        killed.wait(10)
    assert postgres_running_in(outside_tmp)  # the orphan
    assert port_is_free(broker_port)  # the embedded broker died with its process
    with serving(env=env, cwd=outside_tmp) as process:
        wait_for_http(base, process, timeout=90)
        sign_up_and_in(base)
        code, _, output = stop(process, timeout=30)
    assert code == 0, output
    assert not postgres_running_in(outside_tmp)
    assert "left running by process" in output


def test_a_second_serve_on_the_same_data_leaves_the_first_ones_postgres_running(
    outside_tmp: Path,
) -> None:
    port, api_port, broker_port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    with serving(env=embedded_env(broker_port, port), cwd=outside_tmp) as first:
        wait_for_http(base, first, timeout=90)
        with serving(
            "--role", "api", env=embedded_env(broker_port, api_port), cwd=outside_tmp
        ) as api:
            wait_for_http(f"http://127.0.0.1:{api_port}", api, timeout=90)
            assert stop(api, timeout=30)[0] == 0
        sign_up_and_in(base)  # the first one's database still serves
        code, _, output = stop(first, timeout=30)
    assert code == 0, output
    assert not postgres_running_in(outside_tmp)


_ = wait_until


REFUSED = "iotledger: IOTLEDGER_PORT: 99999 is not a port"
FAILING_ON_PURPOSE = """
from tests.support.processes import environment, run, serving

REFUSED = environment(IOTLEDGER_PORT="99999")


def test_served_and_failing():
    with serving(env=REFUSED) as process:
        process.wait(30)
    assert False, "failing on purpose"


def test_run_and_failing():
    assert run("serve", env=REFUSED).returncode == 0


def test_served_and_passing():
    with serving(env=REFUSED) as process:
        process.wait(30)
"""


def test_a_served_process_shows_what_it_printed_in_the_test_output(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only when the test fails: a passing test stays quiet."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[2]))
    pytester.makepyfile(test_on_purpose=FAILING_ON_PURPOSE)
    result = pytester.runpytest_subprocess("-p", "tests.support.outputs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_served_and_failing _*",
            "*- output of iotledger serve (pid *) -*",
            f"{REFUSED} (1-65535)",
            "*_ test_run_and_failing _*",
            "*- output of iotledger serve (exit 2) -*",
            f"{REFUSED} (1-65535)",
        ]
    )
    assert result.stdout.str().count("- output of iotledger") == 2  # none of the passing test


def test_serve_stops_in_one_line_when_the_ca_file_is_no_certificate(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n")
    env = environment(
        IOTLEDGER_DATABASE_URL="postgresql://u:secret@127.0.0.1:1/db",
        IOTLEDGER_MQTT_URL="mqtts://127.0.0.1:1",
        IOTLEDGER_MQTT_CA_FILE=str(ca),
    )
    result = run("serve", "--role", "mqtt", env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("iotledger: IOTLEDGER_MQTT_CA_FILE: cannot load the CA ("), line
