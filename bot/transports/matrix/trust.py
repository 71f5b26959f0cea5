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

The same list decides who may command: a staff command is obeyed only when its event
was decrypted with a Megolm session the bot received directly (not forwarded) from
the curve25519 key of one of the sender's devices, whose self-signed ed25519 key also
signed that session and is listed (`sent_from_listed_device`). A new login with the
password alone has none of that; neither has an unencrypted event.

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

from bot.transports.matrix.inbound import Sealed

__all__ = ["TofuExceptStaff", "Trust", "TrustPolicy", "apply_trust", "sent_from_listed_device"]

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


def sent_from_listed_device(
    client: Any, room_id: str, sender: str, sealed: Sealed | None, listed: frozenset[str]
) -> bool:
    """Whether this event provably came from a device of `sender` whose ed25519 key is listed.

    False for an unencrypted event, a session that reached the bot forwarded (anyone
    could have made it), or a device the bot does not know (yet).
    """
    olm = client.olm
    if sealed is None or olm is None:
        return False
    session = olm.inbound_group_store.get(room_id, sealed.sender_key, sealed.session_id)
    if session is None or session.forwarding_chain:
        return False
    device = olm.device_store.device_from_sender_key(sender, sealed.sender_key)
    if device is None:
        return False
    return bool(device.ed25519 == session.ed25519 and device.ed25519 in listed)
