"""How the hub closes connections (found in review): stopping with clients connected, a client
the hub closes while it floods, frames that follow an invalid one in the same read."""

from __future__ import annotations

import asyncio
import struct
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from core.ledger.memory import MemLedger
from core.schema import parse_project
from hubserver.server import Hub
from tests.hub.conftest import PROD, recv_json
from tests.hub.test_frames import BINARY, CLOSE, TEXT, frame, raw


class SlowLedger(MemLedger):
    """A commit that takes a while: stop() arrives while it runs."""

    def publish_many(self, items, now=None):  # type: ignore[no-untyped-def]
        time.sleep(0.3)
        return super().publish_many(items, now)


def _pub(key: str, tok: int) -> bytes:
    return (f'evt.pub#{tok}\n{{"acts":[{{"top":"prod.cat","key":"{key}","cmd":"new",'
            f'"arg":{{"name":"x"}}}}]}}').encode()


async def test_stop_finishes_the_publish_in_flight_and_closes_connected_clients() -> None:
    """websockets' Server.close() acts only on its first call (which kept the connections),
    so stop() waited for every client to leave: SIGTERM never ended a hub with clients."""
    led = SlowLedger(parse_project(PROD))
    hub = Hub(led)
    await hub.start()
    ws = await connect(hub.url)
    ws.protocol.send_text(_pub("1", 1))
    ws.protocol.send_text(_pub("2", 2))
    ws.send_data()
    await asyncio.sleep(0.05)  # the first commit runs
    stopping = asyncio.create_task(hub.stop())
    got: list[tuple[str, object]] = []
    try:
        while True:
            got.append(await recv_json(ws, 10))
    except ConnectionClosed:
        pass
    await asyncio.wait_for(stopping, 30)  # before the fix: never returned
    assert got[0][0] == "evt.pub#1" and "res" in got[0][1]  # type: ignore[operator]
    assert got[1][0] == "evt.pub#2" and "shutting down" in got[1][1]["err"]  # type: ignore[index]
    assert ws.close_code == 1001
    assert [e.key for e in led.events(0)] == ["1"]  # nothing committed without its ack


async def test_a_client_the_hub_closes_while_it_floods_gets_the_close_frame() -> None:
    """The hub kept queueing the rest of a closed connection's frames, paused reading at 16
    and never read again: the client's close reply was not read and the close ended in a
    reset after 1 s instead of the close handshake."""
    led = MemLedger(parse_project(PROD))
    async with Hub(led) as hub, raw(hub) as c:
        c.w.write(b"".join(frame(TEXT, _pub(str(i), i)) for i in range(1, 5001)))
        code = None
        for _ in range(10_000):
            op, data = await asyncio.wait_for(c.recv(), 10)
            if op == CLOSE:
                code = struct.unpack("!H", data[:2])[0]
                break
        assert code == 1008  # the flood limit, as a close frame
        c.w.write(frame(CLOSE, struct.pack("!H", 1000)))  # our close reply...
        for _ in range(100):  # ... is read: the hub forgets the connection
            if not hub.connections:
                break
            await asyncio.sleep(0.01)
        assert hub.connections == 0
        assert c.r.at_eof() or await c.r.read() == b""


async def test_frames_after_an_invalid_one_in_the_same_read_are_not_served() -> None:
    """After a frame with invalid UTF-8 (close 1007), a publish in the same segment was
    committed without an ack on websockets' parser path: a client without uids that retries
    would publish it twice."""
    led = MemLedger(parse_project(PROD))
    async with Hub(led) as hub:
        for first in (b"", frame(BINARY, b"evt.stat#0")):  # the hub's parser, websockets'
            async with raw(hub) as c:
                if first:
                    await c.send(first)
                    await c.recv()
                await c.send(frame(TEXT, b"evt.stat#1\n\xff") + frame(TEXT, _pub("2", 2)))
                ops = []
                for _ in range(10):
                    op, data = await asyncio.wait_for(c.recv(), 10)
                    ops.append(struct.unpack("!H", data[:2])[0] if op == CLOSE else op)
                    if op == CLOSE:
                        break
                assert ops == [1007]
        # a publish of another client, acked: anything submitted before it is committed too
        async with connect(hub.url) as ws:
            await ws.send(_pub("777", 9).decode())
            head, body = await recv_json(ws, 10)
            assert head == "evt.pub#9" and "res" in body
        assert [e.key for e in led.events(0)] == ["777"]
