"""Final reread 9: the hub's pre-start port check refused a host whose address list holds a
family this machine cannot make sockets of (IPv6 disabled at boot, `localhost` resolving to
::1 too), where asyncio's create_server skips that family and listens on the rest."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from hubserver import dbguard


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_port_check_skips_a_family_the_host_cannot_make(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.socket
    made: list[int] = []

    def no_v6(family: int = -1, *a: Any, **k: Any) -> socket.socket:
        if family == socket.AF_INET6:
            raise OSError(97, "Address family not supported by protocol")
        made.append(family)
        return real(family, *a, **k)

    port = _free_port()
    two = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
           (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
    monkeypatch.setattr(dbguard.socket, "getaddrinfo", lambda *_a, **_k: two)
    monkeypatch.setattr(dbguard.socket, "socket", no_v6)
    dbguard.check_port("localhost", port)  # no OSError: IPv4 checked, IPv6 skipped
    assert made == [socket.AF_INET]
    with real() as busy:  # the port in use on the family that exists: still refused
        busy.bind(("127.0.0.1", port))
        busy.listen()
        with pytest.raises(OSError):
            dbguard.check_port("localhost", port)
