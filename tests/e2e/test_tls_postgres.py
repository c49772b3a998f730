"""TLS to PostgreSQL: every connection iotledger opens verifies the server's certificate.

The server is the test's own, with a certificate the test made, and it refuses any
connection without TLS; `pg_stat_ssl` shows each connection's TLS as the server sees it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.network import free_port
from tests.support.processes import environment, run, serving, stop, wait_for_http, wait_until
from tests.support.tls import Certificates, TlsPostgres, certificates, tls_postgres, verified

NAME = "tlstest"  # the application_name prefix of the process under test
CONNECTIONS = f"""
SELECT a.application_name, s.ssl, s.version
FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
WHERE a.application_name LIKE '{NAME}-%'
"""


@pytest.fixture(scope="module")
def made() -> Iterator[Certificates]:
    with certificates() as made:
        yield made


@pytest.fixture(scope="module")
def postgres(made: Certificates) -> Iterator[TlsPostgres]:
    with tls_postgres(made) as started:
        yield started


def connections(postgres: TlsPostgres) -> list[tuple[str, bool, str]]:
    """What the server lists of the process's connections; the test's own is TLS too
    (the server takes nothing else) and has a name of its own."""
    observer = verified(postgres, postgres.certificates.ca, application_name="observer")
    with psycopg.connect(str(observer)) as conn:
        return [(str(n), bool(s), str(v)) for n, s, v in conn.execute(CONNECTIONS).fetchall()]


def test_migrate_and_serve_use_tls_on_every_connection(
    postgres: TlsPostgres, tmp_path: Path
) -> None:
    url = verified(postgres, postgres.certificates.ca, application_name=NAME)
    port = free_port()
    env = environment(url, IOTLEDGER_PORT=str(port), IOTLEDGER_EMBEDDED_MQTT_PORT=str(free_port()))
    migrated = run("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    with serving(env=env, cwd=tmp_path) as process:
        wait_for_http(f"http://127.0.0.1:{port}", process)
        parts = ("pool", "eventstore", "watch", "dispatcher", "device-checks", "feed-devices")
        expected = {f"{NAME}-{part}" for part in parts}
        wait_until(lambda: expected <= {name for name, _, _ in connections(postgres)})
        seen = connections(postgres)
        code, _, output = stop(process)
    assert code == 0, output
    assert {f"{NAME}-dispatcher", f"{NAME}-device-checks"} <= {name for name, _, _ in seen}
    assert all(tls and version.startswith("TLS") for _, tls, version in seen), seen


@pytest.mark.parametrize("command", [["migrate"], ["serve"], ["projections", "status"]])
def test_a_certificate_the_ca_did_not_sign_stops_start_up_in_one_line(
    postgres: TlsPostgres, command: list[str], tmp_path: Path
) -> None:
    env = environment(verified(postgres, postgres.certificates.wrong_ca))
    result = run(*command, env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("iotledger: IOTLEDGER_DATABASE_URL: cannot connect to "), line
    assert "certificate verify failed" in line
    assert postgres.server is not None
    assert postgres.server.password not in line
