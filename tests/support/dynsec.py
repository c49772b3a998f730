"""A Mosquitto of the test's own with the dynamic-security plugin, and clients to play on it.

The broker starts from the file `mosquitto_ctrl dynsec init` writes (the admin
and nothing else), as an operator's would; it listens on a free loopback port
and is stopped, and its directory removed, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv50

from iotledger.adapters.mqtt.dynsec.accounts import service_account
from iotledger.adapters.mqtt.dynsec.control import DynsecControl
from iotledger.adapters.mqtt.dynsec.reconciler import BrokerAccounts
from iotledger.adapters.mqtt.topics import Topics
from iotledger.settings import MqttUrl
from tests.support.faults.cluster import give_to_broker, mosquitto_path
from tests.support.network import answers, free_port
from tests.support.waiting import eventually

PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")
ADMIN, ADMIN_PASSWORD = "admin", "admin-secret"
SECRET = "a jwt secret of the test deployment, long enough"

CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous false
per_listener_settings false
plugin {plugin}
plugin_opt_config_file {file}
"""


def missing_prerequisite() -> str | None:
    """Why these tests cannot run here, or None."""
    if not Path(mosquitto_path()).exists():
        return "no mosquitto on this machine"
    if not PLUGIN.exists():
        return f"no dynamic-security plugin at {PLUGIN}"
    if shutil.which("mosquitto_ctrl") is None:
        return "no mosquitto_ctrl to initialise the plugin's file"
    return None


class DynsecBroker:
    """A Mosquitto on a port and a dynamic-security file of its own, which a test may stop
    and start again (the file, and so every account, kept)."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.admin = MqttUrl("127.0.0.1", port, ADMIN, ADMIN_PASSWORD)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = self.workdir / "mosquitto.conf"
        with (self.workdir / "mosquitto.log").open("ab") as log:
            command = [mosquitto_path(), "-c", str(config)]
            self._process = subprocess.Popen(command, stdout=log, stderr=log)
        eventually(lambda: answers("127.0.0.1", self.admin.port, 0.5), 10, "mosquitto to listen")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None


@contextlib.contextmanager
def running_dynsec_broker() -> Iterator[DynsecBroker]:
    """A running broker, stopped and its directory removed whatever happens."""
    workdir = Path(tempfile.mkdtemp(prefix="iotledger-dynsec-"))
    data = workdir / "dynsec"
    data.mkdir()
    file = data / "dynamic-security.json"
    init = ["mosquitto_ctrl", "dynsec", "init", str(file), ADMIN, ADMIN_PASSWORD]
    subprocess.run(init, check=True, capture_output=True)
    _give_file_to_broker(data, file)
    broker = DynsecBroker(workdir, free_port())
    config = CONFIG.format(port=broker.admin.port, plugin=PLUGIN, file=file)
    (workdir / "mosquitto.conf").write_text(config)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def dynsec_broker() -> Iterator[MqttUrl]:
    """A running broker; yields the admin's URL."""
    with running_dynsec_broker() as broker:
        yield broker.admin


def _give_file_to_broker(data: Path, file: Path) -> None:
    """The plugin rewrites its file on every change, as the broker's own user."""
    give_to_broker(data)
    with contextlib.suppress(KeyError):
        if os.geteuid() == 0:
            account = pwd.getpwnam("mosquitto")
            os.chown(file, account.pw_uid, account.pw_gid)


def as_user(url: MqttUrl, username: str | None, password: str | None) -> MqttUrl:
    return MqttUrl(url.host, url.port, username, password)


@contextlib.asynccontextmanager
async def deployment(
    admin: MqttUrl, base: str | None = None, secret: str = SECRET
) -> AsyncIterator[BrokerAccounts]:
    """iotledger's side, for a base topic of its own: prepared, as it is at start."""
    topics = Topics(base or f"t{uuid.uuid4().hex[:8]}")
    async with DynsecControl(admin) as control:
        accounts = BrokerAccounts(control, topics, service_account(topics.base, secret))
        await accounts.prepare()
        yield accounts


class Peer:
    """A device, a gateway or a process of iotledger: an MQTT 5 client, as one would be."""

    def __init__(self, url: MqttUrl) -> None:
        self.url = url
        self.received: list[tuple[str, bytes]] = []
        self.disconnected = asyncio.Event()
        self._arrived = asyncio.Event()
        self._subacks: dict[int, asyncio.Future[list[int]]] = {}
        self.client = gmqtt.Client(f"peer-{uuid.uuid4().hex[:10]}", session_expiry_interval=0)
        self.client.set_config({"reconnect_retries": 0, "reconnect_delay": 60})
        if url.username is not None:
            self.client.set_auth_credentials(url.username, url.password)
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect

    async def connect(self) -> Peer:
        """Raises gmqtt's `MQTTConnectError` when the broker refuses the CONNECT."""
        async with asyncio.timeout(5):
            await self.client.connect(self.url.host, self.url.port, version=MQTTv50)
        return self

    async def close(self) -> None:
        if self.client.is_connected:
            await self.client.disconnect()

    async def subscribe(self, topic: str) -> int:
        """The SUBACK's reason code: 1 granted (QoS 1), 0x80 or more refused."""
        mid: int = self.client.subscribe(gmqtt.Subscription(topic, qos=1))
        suback: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._subacks[mid] = suback
        async with asyncio.timeout(5):
            (code,) = await suback
        del self._subacks[mid]
        return code

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    async def until_received(self, payload: bytes, timeout: float = 5.0) -> list[bytes]:
        """Waits for `payload`; what arrived, in order, up to it."""
        async with asyncio.timeout(timeout):
            while payload not in self.payloads:
                self._arrived.clear()
                await self._arrived.wait()
        return self.payloads

    @property
    def payloads(self) -> list[bytes]:
        return [payload for _, payload in self.received]

    def _on_message(self, client: Any, topic: str, payload: bytes, qos: int, props: Any) -> int:
        self.received.append((topic, payload))
        self._arrived.set()
        return 0

    def _on_subscribe(self, client: Any, mid: int, granted: list[int], props: Any) -> None:
        future = self._subacks.get(mid)
        if future is not None and not future.done():
            future.set_result(list(granted))

    def _on_disconnect(self, client: Any, packet: Any, exc: Any = None) -> None:
        self.disconnected.set()
