"""The command line of an operator: --version, --config anywhere, a read-only status,
the rebuild's progress."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import psycopg

from iotledger.adapters.postgres.database import MIGRATION_LOCK
from iotledger.adapters.postgres.views.catalog import PROJECTIONS
from iotledger.progress import Progress
from iotledger.settings import DatabaseUrl
from tests.support.processes import environment, run


def test_version_prints_the_name_and_the_package_version() -> None:
    result = run("--version", env=environment())
    assert result.returncode == 0
    assert result.stdout.strip() == "iotledger 0.1.0"


def test_config_is_taken_before_or_after_the_subcommand(
    own_database: DatabaseUrl, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{own_database}"\n')
    env = environment()
    assert run("migrate", "--config", str(config), env=env).returncode == 0
    before = run("--config", str(config), "projections", "status", env=env)
    after = run("projections", "status", "--config", str(config), env=env)
    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert before.stdout == after.stdout
    assert "users" in after.stdout


def test_projections_status_json_lists_name_position_lag_and_state(
    own_database: DatabaseUrl,
) -> None:
    env = environment(own_database)
    assert run("migrate", env=env).returncode == 0
    result = run("projections", "status", "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == list(PROJECTIONS)
    for row in rows:
        assert row.keys() == {"name", "position", "lag", "state"}
        assert row["state"] == "stopped"  # nothing runs them


def test_projections_status_changes_nothing(own_database: DatabaseUrl, tmp_path: Path) -> None:
    env = environment(own_database)
    del env["IOTLEDGER_JWT_SECRET"]
    result = run("projections", "status", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "iotledger: IOTLEDGER_DATABASE_URL: the database has no iotledger tables; "
        "run `iotledger migrate` first"
    ]
    with psycopg.connect(str(own_database)) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)
    assert list(tmp_path.iterdir()) == []  # no ./var/jwt_secret, no embedded database


def test_a_rebuild_into_a_pipe_prints_plain_lines_with_rate(own_database: DatabaseUrl) -> None:
    env = environment(own_database)
    result = run("projections", "rebuild", "users", env=env)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("users")]
    assert lines, result.stderr
    assert "\r" not in result.stderr
    assert "100.0%" in lines[-1]
    assert "events/s" in lines[-1]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_progress_shows_rate_and_time_left_in_place() -> None:
    terminal = Terminal()
    now = [0.0]
    progress = Progress(terminal, clock=lambda: now[0])
    progress("readings", 0, 1000)
    now[0] = 2.0
    progress("readings", 500, 1000)
    now[0] = 4.0
    progress("readings", 1000, 1000)
    drawn = terminal.getvalue().split("\r")[1:]
    assert "250 events/s 2s left" in drawn[1]
    assert drawn[2].rstrip().endswith("100.0% 1000/1000 250 events/s done")
    assert terminal.getvalue().endswith("\n")


def test_into_a_file_the_progress_prints_a_line_every_few_seconds() -> None:
    log = io.StringIO()
    now = [0.0]
    progress = Progress(log, every=5.0, clock=lambda: now[0])
    for second in range(12):
        now[0] = float(second)
        progress("readings", second * 10, 120)
    progress("readings", 120, 120)
    lines = log.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == ["0/120", "50/120", "100/120", "120/120"]


def test_a_migration_waits_for_another_one_past_the_serving_lock_timeout(
    migrated: tuple[int, dict[str, str]], own_database: DatabaseUrl
) -> None:
    _, env = migrated
    quick = {**env, "IOTLEDGER_LOCK_TIMEOUT": "0.5", "IOTLEDGER_STATEMENT_TIMEOUT": "1"}
    with psycopg.connect(str(own_database), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        release = threading.Timer(3.0, lambda: other.execute("SELECT pg_advisory_unlock_all()"))
        release.start()
        started = time.monotonic()
        result = run("migrate", env=quick)
        release.join()
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 3.0
