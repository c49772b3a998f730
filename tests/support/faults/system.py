"""iotledger as operators run it: `serve` or one process per role, killed and restarted.

Each process logs to a file of its own (a pipe nobody reads would fill up and stall
it); `system()` terminates every process it started, whatever happens.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.faults.cluster import Cluster
from tests.support.network import free_port
from tests.support.outputs import watch
from tests.support.processes import COMMAND, environment, run
from tests.support.waiting import eventually

ROLES = ("projections", "mqtt", "api")
READY_TIMEOUT = 60.0
STATEMENT_TIMEOUT = 4.0  # IOTLEDGER_STATEMENT_TIMEOUT of every deployment
LOCK_TIMEOUT = 2.0


@dataclass
class Node:
    """One `iotledger serve` process; `role` None is plain `serve` (every role)."""

    role: str | None
    replica: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"{self.role or 'serve'}-{self.replica}"

    def start(self) -> None:
        args = ["serve"] if self.role is None else ["serve", "--role", self.role]
        # Stable per replica, and apart from every other deployment on the broker.
        client_id = f"{self.env['IOTLEDGER_MQTT_TOPIC']}-{self.name}"
        env = {**self.env, "IOTLEDGER_MQTT_CLIENT_ID": client_id}
        with self.log.open("ab") as out:
            out.write(f"--- start {time.strftime('%H:%M:%S')}\n".encode())
            self.process = subprocess.Popen(
                [COMMAND, *args], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        watch(self, f"{self.name}: iotledger {' '.join(args)}", self.output, self.alive)

    def signal(self, sig: int) -> None:
        self.send(sig)
        self.reap()

    def send(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def reap(self, timeout: float = 30) -> None:
        """Wait for the process to exit; kill -9 it past `timeout`."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check_alive(self) -> None:
        if not self.alive():
            raise AssertionError(f"{self.name} exited:\n{self.output()[-3000:]}")

    def logged(self, text: str) -> bool:
        """Whether the current run (since the last start) has logged `text`."""
        self.check_alive()
        return text in self.output().rpartition("--- start")[2]


@dataclass
class System:
    """The processes of one iotledger deployment on the suite's cluster."""

    cluster: Cluster
    env: dict[str, str]
    port: int
    workdir: Path
    nodes: list[Node] = field(default_factory=list)
    account: dict[str, str] = field(default_factory=dict)  # a signed-in user's headers

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, *roles: str | None) -> list[Node]:
        """Start a process of each role, all at once, and wait until each is ready."""
        added = []
        for role in roles:
            replica = sum(1 for n in self.nodes if n.role == role)
            log = self.workdir / f"{role or 'serve'}-{replica}.log"
            added.append(Node(role, replica, self.env, log))
            self.nodes.append(added[-1])
            added[-1].start()
        for node in added:
            self.wait_ready(node)
        return added

    def of(self, role: str | None) -> list[Node]:
        return [node for node in self.nodes if node.role == role]

    def restart(self, nodes: list[Node]) -> None:
        for node in nodes:
            node.start()
        for node in nodes:
            self.wait_ready(node)

    def wait_ready(self, node: Node) -> None:
        eventually(lambda: self._ready(node), READY_TIMEOUT, f"{node.name} to be ready")

    def _ready(self, node: Node) -> bool:
        if node.role == "mqtt":
            return node.logged("MQTT connected")
        if node.role == "projections":
            return node.logged("running roles")
        node.check_alive()
        try:
            return httpx.get(f"{self.base}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, nodes: list[Node] | None = None) -> None:
        """SIGTERM to every process (or `nodes`) at once, then wait for each."""
        for node in nodes or self.nodes:
            node.send(signal.SIGTERM)
        for node in nodes or self.nodes:
            node.reap()


@contextlib.contextmanager
def system(cluster: Cluster, workdir: Path, topology: tuple[str | None, ...]) -> Iterator[System]:
    """A fresh database, migrated, and one process per entry of `topology`, ready."""
    database = cluster.postgres.create_database()
    env = environment(
        database,
        cluster.broker.url,
        IOTLEDGER_PORT=str(free_port()),
        IOTLEDGER_MQTT_TOPIC=f"faults-{database.dbname}",
        IOTLEDGER_STATEMENT_TIMEOUT=str(STATEMENT_TIMEOUT),
        IOTLEDGER_LOCK_TIMEOUT=str(LOCK_TIMEOUT),
        IOTLEDGER_DB_POOL_SIZE="4",  # several deployments share the cluster
    )
    workdir.mkdir(parents=True, exist_ok=True)
    migrated = run("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    deployed = System(cluster, env, int(env["IOTLEDGER_PORT"]), workdir)
    try:
        deployed.add(*topology)
        yield deployed
    finally:
        deployed.stop()
