"""Matrix, end-to-end encrypted, through matrix-nio (vodozemac).

- `transport`: the `Transport`: sync batches in, messages to the handlers, hints.
- `outbound`: replies out (trust policy first), redactions, `/forget`, leaving.
- `sync`: the /sync loop (large timeline filter, gap fetch, token saved after a batch).
- `store`: nio's key store inside one SQLCipher file, plus handled event ids.
- `login`: the same device on every start; token and device id kept encrypted.
- `trust`: the device trust policy (trust on first use for activists, staff devices
  only when listed, the bot's own other devices never).
- `rooms`: which invites to take (rate-limited), which rooms are private, DM offers.
- `inbound`, `render`, `undecrypted`: events in, replies out, unreadable events.

Only encrypted rooms with the bot and one person are private; anywhere else the
handlers answer with a pointer and the bot offers an encrypted DM. nio types never
leave this package. Settings: see `config`.
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
