"""The client's address behind a reverse proxy (``--trusted-proxy``).

Behind nginx or Caddy every connection comes from the proxy (127.0.0.1), so the hub's log
named the proxy for every client. A proxy says whom it forwards in ``X-Forwarded-For``
(``client, proxy1, proxy2``: each proxy appends the address it was connected from). Anyone
can send that header, so it is read only when the TCP peer is a proxy the operator named
(:class:`TrustedProxies`, off by default), and only as far as the chain is vouched for:
read from the right, each address appended by a trusted proxy is believed, and the first
address that is not a trusted proxy is the client (a client's own ``X-Forwarded-For`` is
left of it and ignored). A header that cannot be read, or a peer that is not trusted,
leaves the peer's address.

No sockets here: the hub (``hubserver.server``) passes the peer's address and the header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from core.errors import ConfigError

__all__ = ["TrustedProxies", "parse_proxies"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_proxies(specs: Iterable[str]) -> list[Network]:
    """``--trusted-proxy`` values (an address, or a network ``10.0.0.0/8``) as networks.

    Raises:
        ConfigError: a value that is no IP address or network (a host name too: a proxy is
            named by the address it connects from).
    """
    nets: list[Network] = []
    for spec in specs:
        for part in spec.replace(",", " ").split():
            try:
                nets.append(ipaddress.ip_network(part, strict=False))
            except ValueError as exc:
                raise ConfigError(
                    f"--trusted-proxy {part!r}: not an IP address or network ({exc}): give "
                    "the address the reverse proxy connects to the hub from, e.g. "
                    "--trusted-proxy 127.0.0.1 (nginx or Caddy on this machine) or a "
                    "network, 10.0.0.0/24; not a host name") from exc
    return nets


def _address(text: str) -> Address | None:
    """One ``X-Forwarded-For`` entry as an address: ``1.2.3.4``, ``1.2.3.4:5678``,
    ``2001:db8::1``, ``[2001:db8::1]:5678``; None when it is none (``unknown``, garbage)."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.partition(":")[0]
    try:
        return _plain(ipaddress.ip_address(text))
    except ValueError:
        return None


def _plain(addr: Address) -> Address:
    """An IPv4-mapped IPv6 address (a dual-stack listener's IPv4 peer) as IPv4."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class TrustedProxies:
    """Which peers' ``X-Forwarded-For`` the hub believes (none by default)."""

    def __init__(self, nets: Sequence[Network] = ()):
        self.nets = list(nets)

    def __bool__(self) -> bool:
        return bool(self.nets)

    def trusts(self, addr: Address | None) -> bool:
        return addr is not None and any(addr in n for n in self.nets)

    def client(self, peer: str, port: int | None, forwarded: Sequence[str]) -> str:
        """The client's address for logs: ``HOST:PORT`` of the peer when it is not a trusted
        proxy or says nothing readable; else ``CLIENT (via PROXY)``, CLIENT being the
        rightmost address of the ``X-Forwarded-For`` headers (``forwarded``, in order)
        that is not a trusted proxy (the leftmost when all are)."""
        direct = f"{peer}:{port}" if port is not None else peer
        try:
            peer_addr: Address | None = _plain(ipaddress.ip_address(peer))
        except ValueError:
            peer_addr = None
        if not self.nets or not forwarded or not self.trusts(peer_addr):
            return direct
        chain = [e for h in forwarded for e in h.split(",") if e.strip()]
        client: Address | None = None
        for entry in reversed(chain):
            addr = _address(entry)
            if addr is None:  # unreadable: what is left of it is not vouched for
                break
            client = addr
            if not self.trusts(addr):
                break
        if client is None:
            return direct
        return f"{client} (via {peer})"
