"""Making the broker's clients and roles match the accounts iotledger has issued.

`issue` and `revoke` act at once, when a credential is issued, rotated or
revoked; `reconcile` catches up with the log (after a restart, a lost
message, a broker that lost its file). Only clients and roles carrying this
deployment's marker as their text name are ever changed or deleted: the
admin, and whatever else lives on the broker, are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

import msgspec

from iotledger.adapters.mqtt.dynsec.access import (
    DEFAULT_ACCESS,
    Acls,
    device_acls,
    gateway_acls,
    service_acls,
)
from iotledger.adapters.mqtt.dynsec.accounts import Account, Kind, service_url
from iotledger.adapters.mqtt.dynsec.control import (
    Answer,
    Command,
    DynsecControl,
    DynsecError,
    accepts,
    command,
)
from iotledger.adapters.mqtt.dynsec.state import (
    CLIENT_NOT_FOUND,
    LIST_ALL,
    ROLE_NOT_FOUND,
    BrokerState,
    Client,
    access_of,
    broker_state,
    client_of,
    get_client,
    get_role,
    role_of,
)
from iotledger.adapters.mqtt.topics import Topics

log = logging.getLogger(__name__)

DesiredAccounts = Callable[[], Awaitable[Iterable[Account]]]
"""Reads the accounts that should exist; called after the broker is read (see `reconcile`)."""

CHUNK = 200  # commands per control message: one answer stays a modest packet
ABSENT = {CLIENT_NOT_FOUND, ROLE_NOT_FOUND}


class Reconciled(msgspec.Struct):
    """What one reconciliation did, and what it could not (`missing`: re-issue them)."""

    created: list[str] = []
    repaired: list[str] = []
    deleted: list[str] = []
    missing: list[str] = []
    failed: list[str] = []

    @property
    def changed(self) -> bool:
        return bool(self.created or self.repaired or self.deleted)


class BrokerAccounts:
    """This deployment's accounts on a Mosquitto with the dynamic-security plugin."""

    def __init__(self, control: DynsecControl, topics: Topics, service: Account) -> None:
        self.control = control
        self.topics = topics
        self.service = service
        self.marker = f"iotledger {topics.base}"
        prefix = f"iotledger-{topics.base}"
        self._shared = {
            Kind.GATEWAY: (f"{prefix}-gateway", gateway_acls(topics)),
            Kind.SERVICE: (f"{prefix}-service", service_acls(topics)),
        }

    def role(self, account: Account) -> tuple[str, Acls]:
        """The role an account gets: its own for a device, a shared one otherwise."""
        if account.kind is Kind.DEVICE and account.subject_id is not None:
            return account.username, device_acls(self.topics, account.subject_id)
        return self._shared[account.kind]

    async def prepare(self) -> None:
        """Deny by default, the shared roles, and iotledger's own service client."""
        names = [name for name, _ in self._shared.values()]
        roles = await self.control.send([get_role(name) for name in names])
        commands = [command("setDefaultACLAccess", acls=DEFAULT_ACCESS)]
        for (name, acls), answer in zip(self._shared.values(), roles, strict=True):
            present = role_of(answer)
            commands += self._role_commands(name, acls, access_of(present))
        await self._must(commands)
        await self._ensure_service()

    async def _ensure_service(self) -> None:
        """Create it, or give it its password again when it no longer gets in
        (`IOTLEDGER_JWT_SECRET` changed): never otherwise, as that would kick every
        process of the deployment."""
        (answer,) = await self.control.send([get_client(self.service.username)])
        present = client_of(answer)
        password = self.service.password
        if present is not None and await accepts(
            service_url(self.control.url, self.service), tls=self.control.tls
        ):
            password = None
        await self._must(self._client_commands(self.service, present, password))

    async def issue(self, account: Account, password: str) -> None:
        """Create the account with this password, or set it (a rotation)."""
        rolename, acls = self.role(account)
        answers = await self.control.send([get_client(account.username), get_role(rolename)])
        role = role_of(answers[1])
        commands = []
        if account.kind is Kind.DEVICE:
            commands = self._role_commands(rolename, acls, access_of(role))
        commands += self._client_commands(account, client_of(answers[0]), password)
        await self._must(commands)

    async def revoke(self, account: Account) -> None:
        """Delete the client (the broker disconnects it at once) and its own role."""
        commands = [command("deleteClient", username=account.username)]
        if account.kind is Kind.DEVICE:
            commands.append(command("deleteRole", rolename=self.role(account)[0]))
        await self._must(commands)

    async def reconcile(self, desired: DesiredAccounts) -> Reconciled:
        """Create what is missing and known, repair roles, delete what should not be.

        The broker is read before `desired` is: an account issued in between is
        then at worst reported missing once, never deleted. `desired` must come
        from a view caught up with the log at the time it is called, and the
        issuing side must append its event before calling `issue`.
        """
        await self.prepare()
        state = broker_state(*await self.control.send(LIST_ALL))
        wanted = {account.username: account for account in await desired()}
        wanted[self.service.username] = self.service
        done = Reconciled()
        commands = [c for a in wanted.values() for c in self._converge(a, state, done)]
        commands += self._removals(state, wanted, done)
        done.failed = await self._apply(commands)
        _report(done)
        return done

    def _converge(self, account: Account, state: BrokerState, done: Reconciled) -> list[Command]:
        rolename, acls = self.role(account)
        commands: list[Command] = []
        if account.kind is Kind.DEVICE:
            role = state.roles.get(rolename)
            commands = self._role_commands(rolename, acls, access_of(role))
        present = state.clients.get(account.username)
        if present is None and account.password is None:
            done.missing.append(account.username)
            return commands
        client = self._client_commands(account, present, None if present else account.password)
        if present is None:
            done.created.append(account.username)
        elif commands or client:
            done.repaired.append(account.username)
        return commands + client

    def _removals(
        self, state: BrokerState, wanted: dict[str, Account], done: Reconciled
    ) -> list[Command]:
        kept_roles = {self.role(account)[0] for account in wanted.values()}
        kept_roles.update(name for name, _ in self._shared.values())
        commands = []
        for username, client in state.clients.items():
            if self._ours(client.textname) and username not in wanted:
                done.deleted.append(username)
                commands.append(command("deleteClient", username=username))
        for rolename, role in state.roles.items():
            if self._ours(role.textname) and rolename not in kept_roles:
                commands.append(command("deleteRole", rolename=rolename))
        return commands

    def _ours(self, textname: str | None) -> bool:
        return textname == self.marker

    def _role_commands(self, name: str, wanted: Acls, present: Acls | None) -> list[Command]:
        if present is None:
            acls = [msgspec.to_builtins(acl) for acl in sorted(wanted)]
            return [command("createRole", rolename=name, textname=self.marker, acls=acls)]
        removed = [
            command("removeRoleACL", rolename=name, acltype=acl.acltype, topic=acl.topic)
            for acl in sorted(present - wanted)
        ]
        added = [
            command("addRoleACL", rolename=name, **msgspec.to_builtins(acl))
            for acl in sorted(wanted - present)
        ]
        return removed + added

    def _client_commands(
        self, account: Account, present: Client | None, password: str | None
    ) -> list[Command]:
        """The commands that give `account` its role, enabled, with `password` if given."""
        rolename = self.role(account)[0]
        username = account.username
        if present is None:
            if password is None:
                return []
            roles = [{"rolename": rolename}]
            fields = {"password": password, "textname": self.marker, "roles": roles}
            return [command("createClient", username=username, **fields)]
        commands = []
        if password is not None:
            commands.append(command("setClientPassword", username=username, password=password))
        if present.disabled:
            commands.append(command("enableClient", username=username))
        if not present.has_role(rolename):
            commands.append(command("addClientRole", username=username, rolename=rolename))
        return commands

    async def _must(self, commands: Sequence[Command]) -> None:
        """Apply, raising the first refusal (the plugin having nothing to delete is none)."""
        refused = _refusals(await self._send(commands))
        if refused:
            raise refused[0]

    async def _apply(self, commands: Sequence[Command]) -> list[str]:
        """Apply all; the refusals, logged and returned, do not stop the others."""
        refused = _refusals(await self._send(commands))
        for error in refused:
            log.error("dynsec reconciliation: %s", error)
        return [f"{error.command}: {error.error}" for error in refused]

    async def _send(self, commands: Sequence[Command]) -> list[Answer]:
        answers = []
        for start in range(0, len(commands), CHUNK):
            answers += await self.control.send(commands[start : start + CHUNK])
        return answers


def _refusals(answers: Iterable[Answer]) -> list[DynsecError]:
    return [
        DynsecError(a.command, a.error)
        for a in answers
        if a.error is not None and a.error not in ABSENT
    ]


def _report(done: Reconciled) -> None:
    log.info(
        "dynsec reconciled: %d created, %d repaired, %d deleted, %d missing, %d failed",
        *map(len, (done.created, done.repaired, done.deleted, done.missing, done.failed)),
    )
    if done.missing:
        log.warning(
            "dynsec: %d accounts are issued but not on the broker and their passwords are "
            "not kept: re-issue their credentials (%s)",
            len(done.missing),
            ", ".join(done.missing[:20]),
        )
