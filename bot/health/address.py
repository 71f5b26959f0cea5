"""`HRD_BOT_HEALTH_ADDRESS`: where the endpoint listens, loopback unless the operator says so."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["Address", "parse_address"]

LOCALHOST = "localhost"


@dataclass(frozen=True, slots=True)
class Address:
    """A host (an IP address or `localhost`) and a TCP port."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def loopback(self) -> bool:
        if self.host == LOCALHOST:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: where it resolves is not ours to trust
            return False


def parse_address(text: str, *, public: bool = False) -> Address:
    """`127.0.0.1:9102`, `[::1]:9102` or `localhost:9102`. Raises ValueError with a message
    fit for the operator; a non-loopback host is refused unless `public`."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r} is not host:port (e.g. 127.0.0.1:9102)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:9102")
    address = Address(host, int(port_text))
    if not address.loopback and not public:
        raise ValueError(
            f"{address.host} is not a loopback address, so other machines could read the "
            "bot's health and metrics; use 127.0.0.1, or set HRD_BOT_HEALTH_PUBLIC=1 "
            "behind a firewall"
        )
    return address
