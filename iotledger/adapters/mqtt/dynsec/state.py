"""What the plugin holds, read back: its clients and roles as the list commands answer."""

from __future__ import annotations

from typing import Any

import msgspec

from iotledger.adapters.mqtt.dynsec.access import Acl, Acls
from iotledger.adapters.mqtt.dynsec.control import Answer, Command, command

CLIENT_NOT_FOUND = "Client not found"
ROLE_NOT_FOUND = "Role not found"


class RoleRef(msgspec.Struct, frozen=True):
    rolename: str


class Client(msgspec.Struct, frozen=True):
    username: str
    textname: str | None = None
    disabled: bool = False
    roles: list[RoleRef] = []

    def has_role(self, rolename: str) -> bool:
        return any(role.rolename == rolename for role in self.roles)


class Role(msgspec.Struct, frozen=True):
    rolename: str
    textname: str | None = None
    acls: list[Acl] = []

    @property
    def access(self) -> Acls:
        return frozenset(self.acls)


def access_of(role: Role | None) -> Acls | None:
    return None if role is None else role.access


class BrokerState(msgspec.Struct, frozen=True):
    clients: dict[str, Client]
    roles: dict[str, Role]


LIST_ALL = [
    command("listClients", verbose=True, count=-1, offset=0),
    command("listRoles", verbose=True, count=-1, offset=0),
]
"""The commands whose answers `broker_state` reads."""


def broker_state(clients: Answer, roles: Answer) -> BrokerState:
    listed_clients = msgspec.convert(clients.result().get("clients", []), list[Client])
    listed_roles = msgspec.convert(roles.result().get("roles", []), list[Role])
    return BrokerState(
        {c.username: c for c in listed_clients}, {r.rolename: r for r in listed_roles}
    )


def found(answer: Answer, key: str, absent: str, kind: type[Any]) -> Any:
    """A `getClient`/`getRole` answer's object, or None when the plugin has none."""
    if answer.error == absent:
        return None
    return msgspec.convert(answer.result()[key], kind)


def get_client(username: str) -> Command:
    return command("getClient", username=username)


def get_role(rolename: str) -> Command:
    return command("getRole", rolename=rolename)


def client_of(answer: Answer) -> Client | None:
    result: Client | None = found(answer, "client", CLIENT_NOT_FOUND, Client)
    return result


def role_of(answer: Answer) -> Role | None:
    result: Role | None = found(answer, "role", ROLE_NOT_FOUND, Role)
    return result
