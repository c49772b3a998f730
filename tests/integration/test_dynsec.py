"""Mosquitto enforces the issued credentials: what devices, gateways and iotledger see.

Each test drives its own deployment (a base topic of its own) on one broker of
the module's own, started with the dynamic-security plugin and nothing but the
admin `mosquitto_ctrl dynsec init` creates.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
from gmqtt.mqtt.handler import MQTTConnectError

from iotledger.adapters.mqtt.dynsec.access import service_acls
from iotledger.adapters.mqtt.dynsec.accounts import (
    Account,
    device_account,
    gateway_account,
    service_account,
    service_url,
)
from iotledger.adapters.mqtt.dynsec.control import DynsecControl, DynsecUnavailable
from iotledger.adapters.mqtt.dynsec.reconciler import BrokerAccounts
from iotledger.adapters.mqtt.topics import Topics
from iotledger.settings import MqttUrl
from tests.support.dynsec import (
    ADMIN,
    Peer,
    as_user,
    deployment,
    dynsec_broker,
    missing_prerequisite,
)

GRANTED, NOT_AUTHORIZED = 1, 0x87


@pytest.fixture(scope="module")
def admin() -> Iterator[MqttUrl]:
    reason = missing_prerequisite()
    if reason is not None:
        pytest.skip(reason)
    with dynsec_broker() as url:
        yield url


def run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, 30))


async def issued(accounts: BrokerAccounts, account: Account, password: str = "pw") -> MqttUrl:
    await accounts.issue(account, password)
    return as_user(accounts.control.url, account.username, password)


async def service_peer(accounts: BrokerAccounts) -> Peer:
    return await Peer(service_url(accounts.control.url, accounts.service)).connect()


async def refused(url: MqttUrl) -> bool:
    try:
        peer = await Peer(url).connect()
    except MQTTConnectError:
        return True
    await peer.close()
    return False


async def desired(*accounts: Account) -> list[Account]:
    return list(accounts)


def test_a_device_publishes_its_own_telemetry_and_iotledger_receives_it(admin: MqttUrl) -> None:
    async def scenario() -> None:
        async with deployment(admin) as accounts:
            device_id = uuid.uuid4()
            device = await Peer(await issued(accounts, device_account(device_id))).connect()
            service = await service_peer(accounts)
            shared = f"$share/iotledger/{accounts.topics.base}/devices/+/telemetry"
            assert await service.subscribe(shared) == GRANTED
            device.publish(accounts.topics.telemetry(device_id), b'{"t": 21.5}')
            assert await service.until_received(b'{"t": 21.5}') == [b'{"t": 21.5}']

    run(scenario())


def test_a_device_publishing_on_another_devices_topics_reaches_no_one(admin: MqttUrl) -> None:
    async def scenario() -> None:
        async with deployment(admin) as accounts:
            topics, mine, other = accounts.topics, uuid.uuid4(), uuid.uuid4()
            device = await Peer(await issued(accounts, device_account(mine))).connect()
            service = await service_peer(accounts)
            assert await service.subscribe(f"{topics.base}/#") == GRANTED
            device.publish(topics.telemetry(other), b"forged reading")
            device.publish(topics.status(other), b"forged status")
            device.publish(topics.commands(other), b"forged command")
            device.publish(topics.status(mine), b"online")
            assert await service.until_received(b"online") == [b"online"]

    run(scenario())


def test_a_device_receives_its_own_commands_and_may_not_subscribe_to_others(
    admin: MqttUrl,
) -> None:
    async def scenario() -> None:
        async with deployment(admin) as accounts:
            topics, mine, other = accounts.topics, uuid.uuid4(), uuid.uuid4()
            device = await Peer(await issued(accounts, device_account(mine))).connect()
            assert await device.subscribe(topics.commands(other)) == NOT_AUTHORIZED
            assert await device.subscribe(f"{topics.base}/devices/+/commands") == NOT_AUTHORIZED
            assert await device.subscribe(f"{topics.base}/#") == NOT_AUTHORIZED
            assert await device.subscribe(topics.commands(mine)) == GRANTED
            service = await service_peer(accounts)
            service.publish(topics.commands(mine), b"reboot")
            assert await device.until_received(b"reboot") == [b"reboot"]

    run(scenario())


def test_anonymous_connects_and_wrong_passwords_are_refused(admin: MqttUrl) -> None:
    async def scenario() -> None:
        async with deployment(admin) as accounts:
            url = await issued(accounts, device_account(uuid.uuid4()), "right")
            assert await refused(as_user(url, None, None))
            assert await refused(as_user(url, url.username, "wrong"))
            assert await refused(as_user(url, "device-unknown", "right"))
            assert not await refused(url)

    run(scenario())


def test_a_rotated_password_stops_working_and_the_new_one_works(admin: MqttUrl) -> None:
    async def scenario() -> None:
        async with deployment(admin) as accounts:
            account = device_account(uuid.uuid4())
            old = await issued(accounts, account, "first")
            device = await Peer(old).connect()
            new = await issued(accounts, account, "second")
            await asyncio.wait_for(device.disconnected.wait(), 2)  # Mosquitto drops it at once
            assert await refused(old)
            assert not await refused(new)

    run(scenario())


def test_a_revoked_device_is_disconnected_at_once_and_cannot_come_back(admin: MqttUrl) -> None:
    async def scenario() -> None:
        async with deployment(admin) as accounts:
            account = device_account(uuid.uuid4())
            url = await issued(accounts, account)
            device = await Peer(url).connect()
            await accounts.revoke(account)
            await asyncio.wait_for(device.disconnected.wait(), 2)
            assert await refused(url)
            await accounts.revoke(account)  # revoking again is no error

    run(scenario())


def test_a_gateway_speaks_the_lambda_protocol_and_a_device_cannot(admin: MqttUrl) -> None:
    async def scenario() -> None:
        async with deployment(admin) as accounts:
            topics = accounts.topics
            gateway = await Peer(await issued(accounts, gateway_account(uuid.uuid4()))).connect()
            device = await Peer(await issued(accounts, device_account(uuid.uuid4()))).connect()
            service = await service_peer(accounts)
            assert await service.subscribe(f"{topics.base}/#") == GRANTED
            assert await gateway.subscribe(topics.base) == GRANTED
            assert await device.subscribe(topics.base) == NOT_AUTHORIZED
            device.publish(topics.base, b"device on T")
            device.publish(topics.discovery, b"device on discovery")
            gateway.publish(topics.base, b"gateway on T")
            gateway.publish(topics.discovery, b"gateway on discovery")
            seen = await service.until_received(b"gateway on discovery")
            assert seen == [b"gateway on T", b"gateway on discovery"]
            service.publish(topics.base, b"iotledger on T")
            assert await gateway.until_received(b"iotledger on T") == [
                b"gateway on T",
                b"iotledger on T",
            ]

    run(scenario())


def test_reconciling_removes_only_what_this_deployment_manages(admin: MqttUrl) -> None:
    async def scenario() -> None:
        async with deployment(admin) as neighbour, deployment(admin) as accounts:
            neighbours_device = await issued(neighbour, device_account(uuid.uuid4()))
            kept, stale = device_account(uuid.uuid4()), device_account(uuid.uuid4())
            kept_url, stale_url = await issued(accounts, kept), await issued(accounts, stale)
            await accounts.control.call("createClient", username="by-hand", password="x")
            done = await accounts.reconcile(lambda: desired(kept))
            assert done.deleted == [stale.username]
            assert await refused(stale_url)
            assert not await refused(kept_url)
            assert not await refused(neighbours_device)
            assert not await refused(admin)
            clients = (await accounts.control.call("listClients"))["clients"]
            assert {ADMIN, "by-hand"} <= set(clients)

    run(scenario())


def test_an_account_missing_on_the_broker_is_created_if_its_password_is_known_else_reported(
    admin: MqttUrl,
) -> None:
    async def scenario() -> None:
        async with deployment(admin) as accounts:
            known = device_account(uuid.uuid4(), password="kept at issue")
            unknown = gateway_account(uuid.uuid4())
            done = await accounts.reconcile(lambda: desired(known, unknown))
            assert (done.created, done.missing) == ([known.username], [unknown.username])
            assert not await refused(as_user(admin, known.username, "kept at issue"))

    run(scenario())


def test_reconciling_twice_changes_nothing(admin: MqttUrl) -> None:
    async def scenario() -> None:
        async with deployment(admin) as accounts:
            device, gateway = device_account(uuid.uuid4()), gateway_account(uuid.uuid4())
            await issued(accounts, device)
            await issued(accounts, gateway)
            first = await accounts.reconcile(lambda: desired(device, gateway))
            second = await accounts.reconcile(lambda: desired(device, gateway))
            assert not first.changed
            assert not second.changed
            assert second.failed == []

    run(scenario())


def test_a_device_role_changed_by_hand_is_put_back(admin: MqttUrl) -> None:
    async def scenario() -> None:
        async with deployment(admin) as accounts:
            account = device_account(uuid.uuid4())
            await issued(accounts, account)
            widen = {"acltype": "subscribePattern", "topic": "#", "allow": True}
            await accounts.control.call("addRoleACL", rolename=account.username, **widen)
            done = await accounts.reconcile(lambda: desired(account))
            assert done.repaired == [account.username]
            role = (await accounts.control.call("getRole", rolename=account.username))["role"]
            assert {acl["topic"] for acl in role["acls"]} == {
                f"{accounts.topics.base}/devices/{account.subject_id}/{rest}"
                for rest in ("telemetry", "status", "commands", "commands/+/ack", "claim")
            }

    run(scenario())


def test_every_process_derives_the_service_password_and_a_new_secret_takes_over(
    admin: MqttUrl,
) -> None:
    async def scenario() -> None:
        base = f"t{uuid.uuid4().hex[:8]}"
        async with deployment(admin, base, secret="first secret") as accounts:
            assert accounts.service == service_account(base, "first secret")
            first = await service_peer(accounts)
        async with deployment(admin, base, secret="first secret"):
            assert not first.disconnected.is_set()  # a second process kicks no one
        async with deployment(admin, base, secret="second secret") as accounts:
            assert not await refused(service_url(admin, accounts.service))
        await first.close()

    run(scenario())


def test_credentials_issued_at_once_by_many_requests_are_each_answered(admin: MqttUrl) -> None:
    async def scenario() -> None:
        async with deployment(admin) as accounts:
            devices = [device_account(uuid.uuid4()) for _ in range(40)]
            await asyncio.gather(*(accounts.issue(device, "pw") for device in devices))
            done = await accounts.reconcile(lambda: desired(*devices))
            assert (done.changed, done.missing) == (False, [])

    run(scenario())


def test_a_wrong_admin_password_is_a_clear_error(admin: MqttUrl) -> None:
    async def scenario() -> None:
        with pytest.raises(DynsecUnavailable, match="dynsec admin"):
            await DynsecControl(as_user(admin, ADMIN, "wrong")).start()

    run(scenario())


def test_a_command_after_the_connection_closed_fails_at_once(admin: MqttUrl) -> None:
    async def scenario() -> None:
        control = DynsecControl(admin)
        await control.start()
        assert "clients" in await control.call("listClients")
        await control.stop()
        with pytest.raises(DynsecUnavailable, match="not connected"):
            await control.call("listClients")

    run(scenario())


def test_the_service_may_subscribe_in_shared_groups_under_its_base_topic_only() -> None:
    topics = {acl.topic for acl in service_acls(Topics("fleet"))}
    assert topics == {"fleet/#", "$share/+/fleet/#"}
