"""Who may connect to the embedded broker, and what each client may do there.

With `IOTLEDGER_MQTT_AUTH=devices` the embedded broker asks this gate (through
the amqtt plugins in `broker_plugins`): a client connects with an issued device
or gateway credential, or as iotledger's own service account; anonymous clients
and unknown or wrong secrets are refused. Every publish and subscribe is checked
against the client's access list (`Topics.device_acl`, `Topics.gateway_acl`)
with its credential verified again (remembered for at most 2 s), so a rotated
or revoked secret stops working within seconds, and `sweep` disconnects the
clients whose secret no longer holds.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

from iotledger.adapters.mqtt.topics import Acl, Topics
from iotledger.adapters.security.credentials import CachedCredentials
from iotledger.domain.credentials import CredentialKind, same_hash
from iotledger.projections.credentials import Credential

SERVICE_USERNAME = "iotledger"
"""iotledger's own account on the embedded broker (devices and gateways are
`device-<id>`, `gateway-<id>`, so no credential can take this name)."""


class Act(StrEnum):
    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"
    RECEIVE = "receive"


def service_password(jwt_secret: str) -> str:
    """Derived from the JWT key, so every process of one deployment knows it and no file
    or setting holds it; it changes when that key does."""
    key = jwt_secret.encode()
    return hmac.new(key, b"iotledger embedded broker service account", hashlib.sha256).hexdigest()


class BrokerGate:
    def __init__(self, credentials: CachedCredentials, topics: Topics, service_password: str):
        self.credentials = credentials
        self.topics = topics
        self.service_password = service_password

    async def admit(self, username: str | None, password: str | None) -> bool:
        """Whether a client connecting with this username and password may stay."""
        if username is None or password is None:
            return False
        if username == SERVICE_USERNAME:
            return same_hash(password, self.service_password)
        return await self.credentials.verify_async(username, password) is not None

    async def permits(
        self, username: str | None, password: str | None, act: Act, topic: str
    ) -> bool:
        """Whether this client may publish to, or subscribe to, `topic` now."""
        if username == SERVICE_USERNAME:
            return await self.admit(username, password)
        if act is Act.RECEIVE:
            return True  # what it may receive was checked when it subscribed
        if username is None or password is None:
            return False
        credential = await self.credentials.verify_async(username, password)
        if credential is None:
            return False
        acl = self.acl(credential)
        return acl.allows_publish(topic) if act is Act.PUBLISH else acl.allows_subscribe(topic)

    def acl(self, credential: Credential) -> Acl:
        if credential.kind == CredentialKind.GATEWAY:
            return self.topics.gateway_acl()
        return self.topics.device_acl(credential.subject_id)
