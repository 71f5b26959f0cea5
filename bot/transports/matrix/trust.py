"""Which devices the bot encrypts its replies to: the device trust policy.

The default policy, `TofuExceptStaff`, is:

- **Activists' devices are trusted on first use.** The first time the bot is about
  to encrypt to a device of a user who is not staff, it marks that device verified
  in the encrypted key store. Asking a person in danger to compare emoji before they
  get help would stop them, and nio has no cross-signing to lean on. A device is a
  (user, device id, key) triple to nio: new keys under a known id are not trusted
  silently.
- **Staff devices must be listed (verified out of band).** A device of an account
  named in `MATRIX_STAFF_USER_IDS` is verified only while its ed25519 key is listed
  in `MATRIX_STAFF_DEVICE_KEYS`; otherwise it is blacklisted: it receives no room
  keys, so a stolen staff password plus a new login reads nothing.
- **The bot's own other devices are blacklisted**: the bot runs as one device, and
  another login of its account is someone else.

The policy is the only source of truth: before every send to an encrypted room it is
applied to each device there, and the store (SQLCipher) only caches its answers, so
listing or unlisting a staff key takes effect at the next message. Any callable with
`TrustPolicy`'s signature can replace the default (the transport takes it as `trust=`).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["TofuExceptStaff", "Trust", "TrustPolicy", "apply_trust"]

log = logging.getLogger("hrd_bot.matrix.trust")


class Trust(enum.Enum):
    VERIFY = "verify"
    BLOCK = "block"


class TrustPolicy(Protocol):
    """Whether the bot may encrypt to this device."""

    def __call__(self, user_id: str, device_id: str, ed25519: str) -> Trust: ...


@dataclass(frozen=True, slots=True)
class TofuExceptStaff:
    """Trust on first use for everyone but staff (listed keys only) and the bot itself."""

    own_user_id: str
    staff_user_ids: frozenset[str] = frozenset()
    staff_device_keys: frozenset[str] = frozenset()

    def __call__(self, user_id: str, device_id: str, ed25519: str) -> Trust:
        if user_id == self.own_user_id:
            return Trust.BLOCK
        if user_id in self.staff_user_ids:
            return Trust.VERIFY if ed25519 in self.staff_device_keys else Trust.BLOCK
        return Trust.VERIFY


def _decide(client: Any, device: Any, policy: TrustPolicy) -> str | None:
    """Bring one nio device in line with the policy; returns what changed, for counting."""
    decision = policy(device.user_id, device.id, device.ed25519)
    if decision is Trust.VERIFY and not device.verified:
        if device.blacklisted:
            client.unblacklist_device(device)
        client.verify_device(device)
        return "verified"
    if decision is Trust.BLOCK and not device.blacklisted:
        if device.verified:
            client.unverify_device(device)
        client.blacklist_device(device)
        return "blocked"
    return None


def apply_trust(client: Any, room_id: str, policy: TrustPolicy) -> None:
    """Apply the policy to every device in an encrypted room before sending to it."""
    changes: dict[str, int] = {}
    for devices in client.room_devices(room_id).values():
        for device in devices.values():
            if (change := _decide(client, device, policy)) is not None:
                changes[change] = changes.get(change, 0) + 1
    if changes:
        log.info("device trust: %s", ", ".join(f"{n} {c}" for c, n in sorted(changes.items())))
