"""Credentials, claims and gateways in the domain, in memory (no database)."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iotledger.adapters.mqtt.topics import Topics
from iotledger.application.devices import RegisterDevice, owner_after
from iotledger.application.identity import (
    ClaimDevice,
    IdentityService,
    IssueCredentials,
    OfferClaim,
    RegisterGateway,
    RevokeCredentials,
    RevokeGateway,
)
from iotledger.domain.credentials import ClaimRefused, secret_hash
from iotledger.domain.devices import FLEET, DeviceAccess
from iotledger.domain.errors import InvalidInput, NotFound
from iotledger.domain.vocabulary import DeviceStatus
from tests.support.domain import MSGSPEC_STORE, START

secrets = st.text(min_size=1, max_size=40)
durations = st.integers(min_value=1, max_value=7 * 24 * 3600 * 1000).map(
    lambda ms: timedelta(milliseconds=ms)
)


class Identities(IdentityService):
    name = "identity-test"


def fleet_device(app: Identities, owner: UUID | None = None) -> UUID:
    device_id = uuid4()
    app.register_device(
        RegisterDevice(device_id, owner, "thing", DeviceStatus.OK, by="system", at=START)
    )
    return device_id


def test_issuing_twice_rotates_and_revoking_ends_the_credential() -> None:
    app = Identities(env=MSGSPEC_STORE)
    device_id = fleet_device(app)
    for secret in ("one", "two"):
        app.issue_credentials(IssueCredentials(device_id, FLEET, secret_hash(secret), "u", START))
    assert app.device(device_id, FLEET).secret_hash == secret_hash("two")
    app.revoke_credentials(RevokeCredentials(device_id, FLEET, "u", START))
    assert app.device(device_id, FLEET).secret_hash is None
    with pytest.raises(NotFound):
        app.revoke_credentials(RevokeCredentials(device_id, FLEET, "u", START))
    kinds = [type(e).__name__ for e in app.device_history(device_id, FLEET)]
    assert kinds[-3:] == ["CredentialsIssued", "CredentialsRotated", "CredentialsRevoked"]


def test_deleting_a_device_revokes_its_credentials_first() -> None:
    app = Identities(env=MSGSPEC_STORE)
    device_id = fleet_device(app)
    app.issue_credentials(IssueCredentials(device_id, FLEET, secret_hash("s"), "u", START))
    device = app.device(device_id, FLEET)
    device.delete("u", START)
    kinds = [type(e).__name__ for e in device.collect_events()]
    assert kinds == ["CredentialsRevoked", "Deleted"]


@settings(max_examples=50, deadline=None)
@given(secret=secrets, other=secrets, duration=durations, after=durations)
def test_a_claim_holds_only_with_the_offered_secret_before_it_expires(
    secret: str, other: str, duration: timedelta, after: timedelta
) -> None:
    app = Identities(env=MSGSPEC_STORE)
    device_id, user = fleet_device(app), uuid4()
    app.offer_claim(OfferClaim(device_id, secret_hash(secret), duration, "device", START))
    attempt = ClaimDevice(device_id, user, secret_hash(other), START + after)
    if other == secret and after < duration:
        app.claim_device(attempt)
        assert app.device(device_id, DeviceAccess(user_id=user)).owner == user
        with pytest.raises(NotFound):
            app.device(device_id, DeviceAccess(user_id=uuid4()))
        assert owner_after(app.device_history(device_id, DeviceAccess(user_id=user))) == user
    else:
        with pytest.raises(ClaimRefused):
            app.claim_device(attempt)
        assert app.device(device_id, FLEET).owner is None


def test_a_claim_lasts_at_most_a_week_and_another_users_device_is_not_claimable() -> None:
    app = Identities(env=MSGSPEC_STORE)
    device_id = fleet_device(app)
    with pytest.raises(InvalidInput):
        app.offer_claim(OfferClaim(device_id, "h", timedelta(days=8), "device", START))
    private = fleet_device(app, owner=uuid4())
    app.offer_claim(OfferClaim(private, secret_hash("s"), timedelta(hours=1), "device", START))
    with pytest.raises(NotFound):
        app.claim_device(ClaimDevice(private, uuid4(), secret_hash("s"), START))


@given(owner=st.none() | st.uuids(), device=st.uuids(), other=st.uuids())
def test_a_device_access_allows_that_device_alone_whoever_owns_it(
    owner: UUID | None, device: UUID, other: UUID
) -> None:
    access = DeviceAccess(device_id=device)
    assert access.allows(owner, device)
    assert access.allows(owner, other) == (other == device)
    assert not access.allows(owner)


@given(device=st.uuids(), other=st.uuids(), command=st.uuids())
def test_a_device_access_list_names_only_its_own_topics(
    device: UUID, other: UUID, command: UUID
) -> None:
    topics = Topics("T")
    acl = topics.device_acl(device)
    assert acl.allows_publish(topics.telemetry(device))
    assert acl.allows_publish(topics.ack(device, command))
    assert acl.allows_subscribe(topics.commands(device))
    assert not acl.allows_subscribe("T/devices/+/commands")
    assert not acl.allows_subscribe("T/#")
    assert not acl.allows_publish(topics.base)
    assert not acl.allows_publish(topics.discovery)
    if other != device:
        assert not acl.allows_publish(topics.telemetry(other))
        assert not acl.allows_subscribe(topics.commands(other))


def test_only_its_owner_revokes_a_gateway_and_only_once() -> None:
    app = Identities(env=MSGSPEC_STORE)
    owner, gateway_id = uuid4(), uuid4()
    app.register_gateway(RegisterGateway(gateway_id, owner, "hall", secret_hash("s"), START))
    with pytest.raises(NotFound):
        app.revoke_gateway(RevokeGateway(gateway_id, uuid4(), START))
    app.revoke_gateway(RevokeGateway(gateway_id, owner, START))
    with pytest.raises(NotFound):
        app.revoke_gateway(RevokeGateway(gateway_id, owner, START))
