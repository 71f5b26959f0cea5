"""Matrix, end-to-end encrypted, through matrix-nio (vodozemac).

- `transport`: the `Transport`: sync batches in, messages to the handlers, hints.
- `outbound`: replies out (trust policy first), redactions, `/forget`, leaving.
- `sync`: the /sync loop (large timeline filter, gap fetch, token saved after a batch).
- `store`: nio's key store inside one SQLCipher file, plus handled event ids.
- `position`: where the sync position and handled event ids are kept (the store, or
  with several workers the account's, shared in the bot's database).
- `login`: the same device on every start; token and device id kept encrypted.
- `enrol`: with several workers, each one's device and keys published at its start.
- `trust`: the device trust policy (trust on first use for activists, staff devices
  only when listed, the bot's own other devices never).
- `rooms`: which invites to take (rate-limited), which rooms are private, which may
  receive sensitive replies, DM offers.
- `dispatch`: a message to the App by kind of room (staff room, private, other).
- `media`: files in private rooms, fetched within the attachment limit and decrypted.
- `inbound`, `render`, `undecrypted`: events in, replies out, undecryptable events.
- `poison`: events nobody can read, skipped once and counted, never stopping a sync.

Only encrypted rooms with the bot and one person are private; anywhere else the
handlers answer with a pointer and the bot offers an encrypted DM. The staff rooms
of `HRD_BOT_STAFF_ROOMS` are joined on a staff account's invite; every message there
goes to the staff commands, and a report's answers reach one only while it is
end-to-end encrypted and holds nobody but staff. nio types never leave this package.
Settings: see `config`.
"""

from bot.transports.matrix.config import MatrixConfig
from bot.transports.matrix.transport import MatrixTransport, Tuning
from bot.transports.matrix.trust import TofuExceptStaff, Trust, TrustPolicy

__all__ = [
    "MatrixConfig",
    "MatrixTransport",
    "TofuExceptStaff",
    "Trust",
    "TrustPolicy",
    "Tuning",
]
