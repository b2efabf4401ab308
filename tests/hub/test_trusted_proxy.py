"""``--trusted-proxy``: behind nginx or Caddy the hub's log named 127.0.0.1 for every client
(session 13's deployment note). The client's address is taken from ``X-Forwarded-For`` only
for a connection whose TCP peer is a proxy the operator named; from anyone else the header
is ignored (a client could name any address). Real hubs and websockets on 127.0.0.1; the
untrusted peer connects from 127.0.0.2 (Linux routes all of 127.0.0.0/8 to loopback)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from core.errors import ConfigError
from core.ledger import MemLedger
from core.schema import Project
from hubserver.auth import Users
from hubserver.proxy import TrustedProxies, parse_proxies
from hubserver.server import Hub
from tests.hub.conftest import request

ROOT = Path(__file__).resolve().parents[2]
SPOOFED, CLIENT, OTHER = "198.51.100.7", "203.0.113.9", "203.0.113.50"


def proxies(*specs: str) -> TrustedProxies:
    return TrustedProxies(parse_proxies(specs))


# -- the rule, without sockets ----------------------------------------------------------------

def test_the_client_is_the_rightmost_address_no_trusted_proxy_added() -> None:
    p = proxies("127.0.0.1", "10.0.0.0/24")
    # nginx's $proxy_add_x_forwarded_for appends the address it was connected from: a
    # client's own header (SPOOFED) stays left of it and is not believed
    assert p.client("127.0.0.1", 4000, [f"{SPOOFED}, {CLIENT}"]) == f"{CLIENT} (via 127.0.0.1)"
    # two trusted proxies in a row: the one before them is the client
    assert p.client("127.0.0.1", 4000, [f"{SPOOFED}, {CLIENT}, 10.0.0.5"]) == \
        f"{CLIENT} (via 127.0.0.1)"
    # several headers are one list, in order
    assert p.client("127.0.0.1", 4000, [SPOOFED, f"{CLIENT}, 10.0.0.5"]) == \
        f"{CLIENT} (via 127.0.0.1)"
    # ports and IPv6 forms; an IPv4-mapped peer (a dual-stack listener) is its IPv4 address
    assert p.client("::ffff:127.0.0.1", 4000, [f"{CLIENT}:5678"]) == \
        f"{CLIENT} (via ::ffff:127.0.0.1)"
    assert p.client("127.0.0.1", 4000, ["[2001:db8::7]:5678"]) == "2001:db8::7 (via 127.0.0.1)"
    assert p.client("127.0.0.1", 4000, ["2001:db8::7"]) == "2001:db8::7 (via 127.0.0.1)"
    # all trusted: the leftmost
    assert p.client("127.0.0.1", 4000, ["10.0.0.9, 10.0.0.5"]) == "10.0.0.9 (via 127.0.0.1)"


def test_the_header_is_ignored_unless_the_peer_is_trusted_and_it_reads() -> None:
    p = proxies("127.0.0.1")
    assert p.client("127.0.0.2", 4000, [CLIENT]) == "127.0.0.2:4000"  # not a trusted peer
    assert proxies().client("127.0.0.1", 4000, [CLIENT]) == "127.0.0.1:4000"  # off: default
    assert p.client("127.0.0.1", 4000, []) == "127.0.0.1:4000"  # no header
    assert p.client("127.0.0.1", 4000, ["unknown"]) == "127.0.0.1:4000"
    assert p.client("127.0.0.1", 4000, [f"{CLIENT}, junk"]) == "127.0.0.1:4000"
    # what is left of an unreadable entry is not vouched for
    assert p.client("127.0.0.1", 4000, [f"{SPOOFED}, junk, 127.0.0.1"]) == \
        "127.0.0.1 (via 127.0.0.1)"


def test_a_bad_trusted_proxy_is_named_with_the_fix() -> None:
    for bad in ("localhost", "10.0.0.0/33", "nginx.internal"):
        with pytest.raises(ConfigError) as ei:
            parse_proxies([bad])
        msg = str(ei.value)
        assert f"--trusted-proxy {bad!r}" in msg and "--trusted-proxy 127.0.0.1" in msg
    assert [str(n) for n in parse_proxies(["127.0.0.1", "10.0.0.0/24,::1"])] == \
        ["127.0.0.1/32", "10.0.0.0/24", "::1/128"]


async def test_serve_logs_the_forwarded_client(tmp_path: Path) -> None:
    import asyncio

    from tests.hub.test_cli import start, stop

    ann = Users(tmp_path / "hub.db.users.db").add("ann", "writer")
    proc, url = await asyncio.to_thread(start, tmp_path, "--trusted-proxy", "127.0.0.1")
    try:
        async with connect(url, additional_headers={"X-Forwarded-For": CLIENT,
                                                    "Authorization": f"Bearer {ann}"}) as ws:
            assert "res" in await request(ws, "evt.stat")
    finally:
        code, err = await asyncio.to_thread(stop, proc)
    assert code == 0, err
    assert "X-Forwarded-For on connections from 127.0.0.1/32 (--trusted-proxy)" in err
    assert f"connected from {CLIENT} (via 127.0.0.1)" in err


def test_serve_refuses_auth_none_behind_a_trusted_proxy(tmp_path: Path) -> None:
    """Security review 15: `--auth none --host 127.0.0.1 --trusted-proxy 127.0.0.1` started,
    and anyone the proxy let through published as the anonymous writer."""
    db = tmp_path / "hub.sqlite"
    r = subprocess.run([sys.executable, "-m", "hubserver.cli", "serve", "--port", "0", "--db",
                        str(db), "--auth", "none", "--host", "127.0.0.1", "--trusted-proxy",
                        "127.0.0.1"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "--auth none with --trusted-proxy" in r.stderr and "user add" in r.stderr, r.stderr
    assert not db.exists()


def test_serve_refuses_a_bad_trusted_proxy_before_creating_anything(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite"
    r = subprocess.run([sys.executable, "-m", "hubserver.cli", "serve", "--port", "0", "--db",
                        str(db), "--auth", "none", "--trusted-proxy", "nginx.internal"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "--trusted-proxy 'nginx.internal': not an IP address" in r.stderr
    assert not db.exists()


# -- real connections -------------------------------------------------------------------------

def _connected(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage().split(" connected from ", 1)[1] for r in caplog.records
            if " connected from " in r.getMessage()]


def _refused(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage().split(" from ", 1)[1].split(": ")[0] for r in caplog.records
            if r.getMessage().startswith("connection refused from ")]


async def test_a_trusted_proxy_names_the_client_and_anyone_else_is_named_by_address(
        tmp_path: Path, prod: Project, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="outpost.hub")
    users = Users(tmp_path / "users.db")
    ann = users.add("ann", "writer")
    auth = {"Authorization": f"Bearer {ann}"}
    async with Hub(MemLedger(prod), users=users, trusted_proxies=proxies("127.0.0.1")) as hub:
        # from the proxy (127.0.0.1), as nginx forwards: the client's own header first
        fwd = {**auth, "X-Forwarded-For": f"{SPOOFED}, {CLIENT}"}
        async with connect(hub.url, additional_headers=fwd) as ws:
            assert "res" in await request(ws, "evt.stat")
        # from an address that is no trusted proxy: its header is ignored (spoofing)
        async with connect(hub.url, additional_headers={**auth, "X-Forwarded-For": CLIENT},
                           local_addr=("127.0.0.2", 0)) as ws:
            assert "res" in await request(ws, "evt.stat")
            port = ws.local_address[1]
    assert _connected(caplog) == [f"{CLIENT} (via 127.0.0.1)", f"127.0.0.2:{port}"]


async def test_without_trusted_proxy_the_header_is_ignored(
        tmp_path: Path, prod: Project, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="outpost.hub")
    async with Hub(MemLedger(prod)) as hub, connect(
            hub.url, additional_headers={"X-Forwarded-For": CLIENT}) as ws:
        assert "res" in await request(ws, "evt.stat")
        port = ws.local_address[1]
    assert _connected(caplog) == [f"127.0.0.1:{port}"]


async def test_refused_handshakes_are_limited_per_forwarded_client(
        tmp_path: Path, prod: Project, caplog: pytest.LogCaptureFixture) -> None:
    """The repeat limit of refusal warnings keys on the client: behind the proxy two clients
    with bad tokens are two lines (before: one, both were 127.0.0.1), one client's second
    attempt is counted, not logged."""
    caplog.set_level(logging.WARNING, logger="outpost.hub")
    users = Users(tmp_path / "users.db")
    users.add("ann", "writer")
    async with Hub(MemLedger(prod), users=users, trusted_proxies=proxies("127.0.0.1")) as hub:
        for client in (CLIENT, OTHER, CLIENT):
            with pytest.raises(InvalidStatus) as ei:
                async with connect(hub.url, additional_headers={
                        "Authorization": "Bearer wrong", "X-Forwarded-For": client}):
                    pass
            assert ei.value.response.status_code == 401
    assert _refused(caplog) == [f"{CLIENT} (via 127.0.0.1)", f"{OTHER} (via 127.0.0.1)"]
