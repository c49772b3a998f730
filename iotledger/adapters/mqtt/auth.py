"""`IOTLEDGER_MQTT_AUTH` decided once: where iotledger's links connect, and who tells the
broker about a credential when it is issued or revoked.

The API calls one `Enforcer` whatever the mode. With `devices` the embedded gate
asks the credentials read model on every check, and with `off` nobody enforces
anything, so neither has anything to be told (`ReadModelEnforcer`). With
`dynsec` the broker must learn a password when it is issued (iotledger keeps
only its hash), so the enforcer is `mqtt_dynsec.enforcer.DynsecEnforcer`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable
from uuid import UUID

from iotledger.adapters.embedded.gate import SERVICE_USERNAME
from iotledger.adapters.mqtt.dynsec.accounts import Account, service_url
from iotledger.domain.credentials import CredentialKind
from iotledger.settings import MqttUrl, Settings, mqtt_auth_mode


@runtime_checkable  # a handler's dependency: Litestar checks what it is given
class Enforcer(Protocol):
    """Told after a credential's event is appended; `issue` raises `Unavailable` when the
    broker could not be told (the event stays: issuing again rotates)."""

    async def issue(self, kind: CredentialKind, subject_id: UUID, password: str) -> None: ...

    async def revoke(self, kind: CredentialKind, subject_id: UUID) -> None: ...


class ReadModelEnforcer:
    """`devices` (the embedded gate reads the credentials model itself) and `off`."""

    async def issue(self, kind: CredentialKind, subject_id: UUID, password: str) -> None:
        return None

    async def revoke(self, kind: CredentialKind, subject_id: UUID) -> None:
        return None


def link_url(settings: Settings, gate_password: str, dynsec_service: Account) -> MqttUrl:
    """The URL every MQTT link of iotledger connects with, by mode: the embedded gate's
    service account (`devices`), the derived dynsec service account, never the admin
    (`dynsec`), or the URL as given (`off`)."""
    mode = mqtt_auth_mode(settings)
    given = settings.mqtt_url
    if given is None:
        account = (SERVICE_USERNAME, gate_password) if mode == "devices" else (None, None)
        return MqttUrl("127.0.0.1", settings.embedded_mqtt_port, *account)
    if mode == "dynsec":
        return service_url(given, dynsec_service)
    return given
