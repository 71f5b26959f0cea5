"""A local HTTP endpoint for the operator's monitoring: liveness, readiness and
Prometheus metrics that identify nobody (see README, "Health and metrics").

Off unless `HRD_BOT_HEALTH_ADDRESS` is set; it listens on loopback only unless the
operator sets `HRD_BOT_HEALTH_PUBLIC=1`. The server (`bot.health.server`, aiohttp) is
imported only by `hrd-bot run`, so the admin commands do not load it.
"""

from bot.health.address import Address, parse_address
from bot.health.counts import Counts

__all__ = ["Address", "Counts", "parse_address"]
