"""What devices say about themselves over MQTT: their MAC address, held by one device.

A `MacAddressClaim` has an id derived (uuid5) from the normalised address, so two
devices can never hold the same MAC at once: the second claim collides in the
event store. A claim whose device was deleted, or that its device gave up for
another address, can be taken again.
"""

from __future__ import annotations

import re
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from iotledger.domain.errors import HeldElsewhere, InvalidInput

_MACS = uuid5(NAMESPACE_URL, "iotledger:mac-address")
_MAC = re.compile(r"[0-9a-f]{2}(?:([:-]?)[0-9a-f]{2})(?:\1[0-9a-f]{2}){4}")


def normalise_mac(mac: str) -> str:
    """`00-11-22-AA-BB-CC`, `001122aabbcc` and `00:11:22:aa:bb:cc` are one address."""
    text = mac.strip().lower()
    if not _MAC.fullmatch(text):
        raise InvalidInput("mac_address must be six hexadecimal octets, e.g. 00:11:22:33:44:55")
    digits = text.replace(":", "").replace("-", "")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


class MacAddressClaim(Aggregate):
    """Holds one MAC address for the device that announced it."""

    device_id: UUID | None

    def __init__(self) -> None:
        """The blank that `Claimed` fills in."""
        self.device_id = None

    class Claimed(Aggregate.Created):
        mac_address: str
        device_id: UUID

        def apply(self, claim: MacAddressClaim) -> None:
            claim.device_id = self.device_id

    class Taken(Aggregate.Event):
        """Another device holds the address now (the previous one gave it up or is gone)."""

        device_id: UUID

        def apply(self, claim: MacAddressClaim) -> None:
            claim.device_id = self.device_id

    class Released(Aggregate.Event):
        def apply(self, claim: MacAddressClaim) -> None:
            claim.device_id = None

    @staticmethod
    def id_for(mac_address: str) -> UUID:
        return uuid5(_MACS, normalise_mac(mac_address))

    @classmethod
    def claim(cls, mac_address: str, device_id: UUID, at: datetime) -> MacAddressClaim:
        return cls._create(
            cls.Claimed,
            id=cls.id_for(mac_address),
            mac_address=normalise_mac(mac_address),
            device_id=device_id,
            timestamp=at,
        )

    def take(self, device_id: UUID, holder_gone: bool, at: datetime) -> None:
        """Hold the address for `device_id`; Conflict while another live device holds it."""
        if self.device_id == device_id:
            return
        if self.device_id is not None and not holder_gone:
            raise HeldElsewhere(
                f"MAC address already belongs to device {self.device_id}", "mac_address"
            )
        self.trigger_event(self.Taken, device_id=device_id, timestamp=at)

    def release(self, at: datetime) -> None:
        if self.device_id is not None:
            self.trigger_event(self.Released, timestamp=at)
