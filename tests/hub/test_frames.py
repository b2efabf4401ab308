"""The hub's own frame path (hubserver.connection.HubConnection) against raw bytes on a real socket.

The hub parses plain text frames itself and hands websockets everything else; these tests
send exactly the bytes a client could send (several frames in one segment, a frame split
byte by byte, pings between requests, fragments, binary, bad UTF-8, frames sent with the
HTTP request) and check that every request is answered in order and that websockets still
answers pings and closes with the right codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest
from websockets.asyncio.client import connect

from core.ledger import MemLedger
from core.schema import Project
from hubserver.connection import HubConnection
from hubserver.limits import Limits
from hubserver.server import Hub
from tests.hub.conftest import request

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def frame(op: int, payload: bytes, fin: bool = True, mask: bool = True,
          key: bytes | None = None) -> bytes:
    """One client frame, masked as RFC 6455 requires (with ``key``, else a random one)."""
    head = bytes([(0x80 if fin else 0) | op])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = key or os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def text(s: str) -> bytes:
    return frame(TEXT, s.encode())


class Raw:
    """A WebSocket client made of a TCP stream and hand-built frames."""

    def __init__(self, r: asyncio.StreamReader, w: asyncio.StreamWriter):
        self.r = r
        self.w = w

    @staticmethod
    def upgrade(port: int) -> bytes:
        return (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n").encode()

    async def send(self, data: bytes) -> None:
        self.w.write(data)
        await self.w.drain()

    async def recv(self) -> tuple[int, bytes]:
        """The next server frame: opcode and payload."""
        b0, b1 = await asyncio.wait_for(self.r.readexactly(2), 5)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.r.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.r.readexactly(8))[0]
        return b0 & 0x0F, await asyncio.wait_for(self.r.readexactly(n), 5)

    async def reply(self) -> tuple[str, object]:
        op, data = await self.recv()
        assert op == TEXT, (op, data)
        head, _, body = data.decode().partition("\n")
        return head, orjson.loads(body) if body else None


@asynccontextmanager
async def raw(hub: Hub, first: bytes = b"") -> AsyncIterator[Raw]:
    """Connect and upgrade; ``first`` is sent in the same segment as the HTTP request."""
    r, w = await asyncio.open_connection("127.0.0.1", hub.port)
    w.write(Raw.upgrade(hub.port) + first)
    await w.drain()
    status = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
    assert status.startswith(b"HTTP/1.1 101"), status
    try:
        yield Raw(r, w)
    finally:
        w.close()
        with contextlib.suppress(ConnectionError, OSError):
            await w.wait_closed()


async def test_many_frames_in_one_segment_and_one_frame_byte_by_byte(hub: Hub) -> None:
    async with raw(hub) as c:
        await c.send(b"".join(text(f"evt.stat#{i}") for i in range(50)))
        for i in range(50):
            head, body = await c.reply()
            assert head == f"evt.stat#{i}" and isinstance(body, dict) and "res" in body
        long = text("evt.pub#x\n" + orjson.dumps(
            {"acts": [{"top": "prod.cat", "key": "1", "cmd": "new",
                       "arg": {"name": "n" * 300}}]}).decode())  # 16-bit length
        for b in long:
            await c.send(bytes([b]))
        head, body = await c.reply()
        assert head == "evt.pub#x" and body["res"]["evs"][0]["key"] == "1"  # type: ignore[index]


async def test_pings_between_requests_are_answered_in_place(hub: Hub) -> None:
    async with raw(hub) as c:
        await c.send(text("evt.stat#1") + frame(PING, b"p1") + text("evt.stat#2")
                     + frame(PONG, b"unsolicited") + text("evt.stat#3"))
        got = [await c.recv() for _ in range(4)]
        assert [op for op, _ in got] == [TEXT, PONG, TEXT, TEXT]
        assert got[1][1] == b"p1"
        assert [d.split(b"\n")[0] for op, d in got if op == TEXT] == \
            [b"evt.stat#1", b"evt.stat#2", b"evt.stat#3"]
        peer = next(iter(hub._peers.values()))
        assert peer.ws._fast  # still on the hub's own parser


async def test_fragmented_and_binary_messages_are_served(hub: Hub) -> None:
    async with raw(hub) as c:
        await c.send(frame(TEXT, b"evt.st", fin=False) + frame(PING, b"mid")
                     + frame(CONT, b"at#1", fin=False) + frame(CONT, b"", fin=True))
        assert await c.recv() == (PONG, b"mid")
        assert (await c.reply())[0] == "evt.stat#1"
        await c.send(frame(BINARY, b"evt.stat#2") + text("evt.stat#3"))
        assert (await c.reply())[0] == "evt.stat#2"
        assert (await c.reply())[0] == "evt.stat#3"


async def test_frames_sent_with_the_http_request_are_served(hub: Hub) -> None:
    async with raw(hub, first=text("evt.stat#1") + text("evt.stat#2")) as c:
        assert (await c.reply())[0] == "evt.stat#1"
        assert (await c.reply())[0] == "evt.stat#2"
        await c.send(text("evt.stat#3"))
        assert (await c.reply())[0] == "evt.stat#3"


@pytest.mark.parametrize("cut", [1, 2, 3, 6])
async def test_request_with_part_of_a_frame_then_the_rest(hub: Hub, cut: int) -> None:
    """websockets has consumed part of the frame (2 bytes: its header, with nothing left in
    its buffer): the hub must leave the stream to websockets, not parse from the middle.
    The mask key starts like a text frame's header, so parsing from the middle would read
    it as one."""
    whole = frame(TEXT, b"evt.stat#7", key=bytes([0x81, 0x82, 0, 0]))
    async with raw(hub, first=whole[:cut]) as c:
        await asyncio.sleep(0.05)
        await c.send(whole[cut:] + text("evt.stat#8"))
        assert (await c.reply())[0] == "evt.stat#7"
        assert (await c.reply())[0] == "evt.stat#8"


async def test_invalid_utf8_closes_with_1007(hub: Hub) -> None:
    async with raw(hub) as c:
        await c.send(text("evt.stat#1") + frame(TEXT, b"evt.stat#2\n\xff\xfe"))
        assert (await c.reply())[0] == "evt.stat#1"
        op, data = await c.recv()
        assert op == CLOSE and struct.unpack("!H", data[:2])[0] == 1007


async def test_unmasked_and_reserved_bits_close_with_1002(hub: Hub) -> None:
    for bad in (frame(TEXT, b"evt.stat#1", mask=False),
                bytes([0xC1]) + frame(TEXT, b"evt.stat#1")[1:]):  # RSV1 without compression
        async with raw(hub) as c:
            await c.send(text("evt.stat#0") + bad)
            assert (await c.reply())[0] == "evt.stat#0"
            op, data = await c.recv()
            assert op == CLOSE and struct.unpack("!H", data[:2])[0] == 1002


async def test_oversized_frame_header_closes_with_1009(prod: Project,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="outpost.hub")
    async with Hub(MemLedger(prod), limits=Limits(max_message=1000)) as hub:
        async with raw(hub) as c:
            await c.send(frame(TEXT, b"x" * 1001)[:20])  # only the start: the header decides
            op, data = await c.recv()
            assert op == CLOSE and struct.unpack("!H", data[:2])[0] == 1009
        for _ in range(100):
            if hub.connections == 0:
                break
            await asyncio.sleep(0.02)
    # the log names the limit the hub closed it for, not the 1006 of a peer that never
    # answered the close (ops review 11)
    said = [r.getMessage() for r in caplog.records if "closed by the hub" in r.getMessage()]
    assert len(said) == 1 and "code 1009" in said[0] and "exceeds limit" in said[0], said


async def test_each_1009_close_has_its_line_though_the_warning_is_repeat_limited(
        prod: Project, caplog: pytest.LogCaptureFixture) -> None:
    """Ops review 12: 20 connections closed with 1009 logged 1 close line, the other 19 only
    at shutdown (the close was the repeat-limited warning alone)."""
    caplog.set_level(logging.INFO, logger="outpost.hub")
    async with Hub(MemLedger(prod), limits=Limits(max_message=1000)) as hub:
        for _ in range(3):
            async with raw(hub) as c:
                await c.send(frame(TEXT, b"x" * 1001)[:20])
                op, data = await c.recv()
                assert op == CLOSE and struct.unpack("!H", data[:2])[0] == 1009
        for _ in range(100):
            if hub.connections == 0:
                break
            await asyncio.sleep(0.02)
    said = [r.getMessage() for r in caplog.records]
    closes = [m for m in said if "disconnected (code 1009" in m]
    assert len({m.split(":")[0] for m in closes}) == 3, said
    # the warning itself stays repeat-limited (the hub's filter on its loggers)
    assert len([m for m in said if "closed by the hub: code 1009" in m
                and not m.startswith("earlier")]) == 1, said


async def test_client_close_is_echoed(hub: Hub) -> None:
    async with raw(hub) as c:
        await c.send(text("evt.stat#1") + frame(CLOSE, struct.pack("!H", 1000) + b"bye"))
        assert (await c.reply())[0] == "evt.stat#1"
        op, data = await c.recv()
        assert op == CLOSE and struct.unpack("!H", data[:2])[0] == 1000
    for _ in range(100):
        if hub.connections == 0:
            break
        await asyncio.sleep(0.02)
    assert hub.connections == 0


async def test_compressed_connections_take_websockets_path(prod: Project) -> None:
    async with Hub(MemLedger(prod), limits=Limits(compression=True)) as hub, \
            connect(hub.url, compression="deflate") as ws:
        for _ in range(3):
            assert "res" in await request(ws, "evt.stat")
        peer = next(iter(hub._peers.values()))
        assert not peer.ws._fast and peer.ws.protocol.extensions


async def test_websockets_hooks_the_hub_relies_on(hub: Hub) -> None:
    """websockets internals the hub's connection uses (pinned: websockets 17.4.x).

    ``ServerConnection.process_event`` gets every parsed event, ``data_received`` feeds the
    Sans-I/O parser, whose generator waits in ``StreamReader.at_eof`` between frames. If an
    upgrade changes these, this fails before the hub silently loses its fast path.
    """
    async with connect(hub.url) as ws:
        assert "res" in await request(ws, "evt.stat")
        peer = next(iter(hub._peers.values()))
        conn = peer.ws
        assert isinstance(conn, HubConnection) and conn._fast is True
        assert conn.protocol.reader.buffer == b"" and conn.protocol.max_message_size


async def test_replies_of_each_header_length_are_framed_right(hub: Hub) -> None:
    """The hub's own reply frames (hubserver.peer.Peer.write): a 7-bit, a 16-bit and a
    64-bit payload length, each read back whole by a plain client."""
    async with raw(hub) as c:
        await c.send(text('evt.unsub#1\n{"tops": []}'))
        op, data = await c.recv()
        assert op == TEXT and len(data) < 126 and data == b'evt.unsub#1\n{"res":true}'
        for i, size in enumerate((300, 70_000), 2):
            await c.send(text(f"evt.pub#{i}\n" + orjson.dumps(
                {"acts": [{"top": "prod.cat", "key": str(i), "cmd": "new",
                           "arg": {"name": "n" * size}}]}).decode()))
            op, data = await c.recv()
            assert op == TEXT and (126 <= len(data) < 1 << 16 if size == 300
                                   else len(data) >= 1 << 16)
            head, _, body = data.decode().partition("\n")
            ev = orjson.loads(body)["res"]["evs"][0]
            assert head == f"evt.pub#{i}" and ev["arg"]["name"] == "n" * size
        assert next(iter(hub._peers.values())).ws._fast  # written by the hub, not websockets



def _sat(tok: int, n: int, size: int) -> str:
    """An evt.sat request of ``n`` new records with values of ``size`` bytes (audits)."""
    trans = [{"base": "0001-01-01T00:00:00Z", "created": "2026-01-01T00:00:00Z",
              "uid": f"u{tok}-{i}", "acts": [{"top": "prod.cat", "key": str(tok * 1000 + i),
                                               "cmd": "new", "arg": {"name": "v" * size}}]}
             for i in range(n)]
    req = {"rev": "0001-01-01T00:00:00Z", "tops": ["prod.cat"], "trans": trans,
           "audits": True, "cont": True}
    return f"evt.sat#{tok}\n" + orjson.dumps(req).decode()


async def test_sat_replies_go_as_text_frames_written_at_once_or_queued(hub: Hub) -> None:
    """An evt.sat reply is handed to the connection as UTF-8 bytes (``Send.data``): it is
    still a text frame, whether the hub writes it at once (``Peer.write``) or its sender
    task sends it behind others (a client that does not read: the transport pauses and
    the replies queue up)."""
    async with raw(hub) as c:
        await c.send(text(_sat(1, 3, 10)))
        head, body = await c.reply()  # written at once
        assert head == "evt.sat#1" and [a["uid"] for a in body["res"]["acks"]] == [
            "u1-0", "u1-1", "u1-2"]  # type: ignore[index]
        peer = next(iter(hub._peers.values()))
        n = 40  # replies of ~400 KB, not read: more than the socket buffers take
        await c.send(b"".join(text(_sat(tok, 20, 20_000)) for tok in range(2, 2 + n)))
        for _ in range(500):  # bounded: 10 s
            if not peer.idle:  # the sender task is sending: the queued path
                break
            await asyncio.sleep(0.02)
        assert not peer.idle, "the hub never queued a reply"
        for tok in range(2, 2 + n):  # every reply, in order, each a text frame
            op, data = await c.recv()
            assert op == TEXT, op
            head, _, rest = data.decode().partition("\n")
            assert head == f"evt.sat#{tok}" and len(orjson.loads(rest)["res"]["acks"]) == 20


async def test_sat_replies_on_a_compressed_connection_are_text(prod: Project) -> None:
    """websockets' own path (an extension negotiated): the reply's bytes as a text frame."""
    async with Hub(MemLedger(prod), limits=Limits(compression=True)) as hub, \
            connect(hub.url, compression="deflate") as ws:
        await ws.send(_sat(1, 2, 10))
        got = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(got, str) and got.startswith("evt.sat#1\n")
        assert [a["uid"] for a in orjson.loads(got.partition("\n")[2])["res"]["acks"]] == [
            "u1-0", "u1-1"]
        assert not next(iter(hub._peers.values())).ws._fast
