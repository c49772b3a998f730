"""The names iotledger goes by on a broker: client ids and the shared-subscription group.

A client id names a session: two processes connecting with one id take it from
each other (each connect closes the other's), and both lose messages. A share
group names who splits the messages of a filter. So every name derives from
the deployment (its base topic `T`), and a client id also from the role and
the replica, so that deployments, roles and replicas on one broker never meet:

- share group: `iotledger.<T>`: every `mqtt` process of a deployment, none of another;
- the `mqtt` role (alone or in a combined `serve`): `iotledger.<T>.mqtt.<host name>`,
  its persistent session; the same after a restart (or a move from `serve` to
  `--role mqtt` on that host), so what the session queued is picked up again;
- an `api` process without the `mqtt` role, which only publishes and keeps no
  session: `iotledger.<T>.api.<host name>.<process id>`.

`<T>` is percent-encoded (`site/a` gives `site%2Fa`): a share group may not
contain `/`, and two base topics never give one name. `IOTLEDGER_MQTT_CLIENT_ID`
replaces the `mqtt` role's id (give each replica its own); an `api` process
appends `.api.<host name>.<process id>` to it.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import quote

ROLE_WITH_SESSION = "mqtt"


def share_group(base_topic: str) -> str:
    return f"iotledger.{quote(base_topic, safe='')}"


def client_id(base_topic: str, configured: str | None, roles: tuple[str, ...]) -> str:
    """This process's client id (see the module's docstring)."""
    host = socket.gethostname()
    if ROLE_WITH_SESSION in roles:
        return configured or f"{share_group(base_topic)}.{ROLE_WITH_SESSION}.{host}"
    return f"{configured or share_group(base_topic)}.api.{host}.{os.getpid()}"
