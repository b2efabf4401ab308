"""Replay the client frames captured from daql's Go hub; our replies must have daql's shape.

Revisions and ``mig`` differ (other clock, our schema hash) and error texts are ours, so
frames are compared after normalising those; everything else (subjects, tokens, ids, keys,
args, omitted fields, notes, trailing newline of pushes) must match the capture exactly.

Known, intended deviations (documented in docs/protocol.md):
- ``evt.stat`` results carry the Outpost extension ``ledger`` (the ledger's id, 32 hex
  digits; daql's decoder ignores unknown fields): :func:`norm` checks and removes it.
- ``evt.stat`` results carry the Outpost extension ``max_message`` (the hub's frame limit;
  daql's decoder ignores unknown fields): :func:`norm` checks and removes it.
- ``evt.stat`` results carry the Outpost extension ``cont`` (``true``: the hub honours
  ``evt.sat``'s ``cont``; daql's decoder ignores unknown fields): :func:`norm` checks and
  removes it.
- ``evt.stat`` results carry the Outpost extension ``db`` (the database's health, ``ok``
  here): :func:`norm` checks and removes it.
- ``evt.stat`` results carry the Outpost extension ``role`` (``"reader"`` or ``"writer"``,
  session 10; daql's decoder ignores unknown fields): :func:`norm` checks and removes it.
- ``evt.nope#15``: daql does not answer an unknown subject; we reply with an error.
- session 2, ``evt.sub#2`` for a second topic: daql replies ``null`` and pushes the old event
  with the next update; we reply with the catch-up at once. The events A gets are the same.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

from core.ledger import MemLedger
from core.schema import Project
from hubserver.server import Hub
from tests.data.daql_frames import FRAMES, DaqlFrame

_REV = re.compile(r'"(\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:\d\d))"')
ZERO = "0001-01-01T00:00:00Z"
_LEDGER = re.compile(r"[0-9a-f]{32}")


def norm(text: str) -> tuple[str, Any]:
    """Head and body with non-zero revisions, mig and error texts replaced."""
    head, _, body = text.partition("\n")
    if not body.strip():
        return head, None
    obj = orjson.loads(body)
    res = obj.get("res") if isinstance(obj, dict) else None
    if head.startswith("evt.stat") and isinstance(res, dict) and "ledger" in res:
        # the Outpost extension: the ledger's id, a field daql's Status lacks
        assert _LEDGER.fullmatch(res.pop("ledger")), text
    if head.startswith("evt.stat") and isinstance(res, dict) and "max_message" in res:
        # the Outpost extension: the hub's frame limit, which daql's Status lacks
        assert type(res.pop("max_message")) is int, text
    if head.startswith("evt.stat") and isinstance(res, dict) and "cont" in res:
        # the Outpost extension: this hub honours evt.sat's cont (two requests in flight)
        assert res.pop("cont") is True, text
    if head.startswith("evt.stat") and isinstance(res, dict) and "acks" in res:
        # the Outpost extension: this hub acks or rejects each transaction by uid
        assert res.pop("acks") is True, text
    if head.startswith("evt.stat") and isinstance(res, dict) and "db" in res:
        # the Outpost extension: the database's health (session 10), which daql lacks
        assert res.pop("db") == "ok" and "db_why" not in res, text
    if head.startswith("evt.stat") and isinstance(res, dict) and "role" in res:
        # the Outpost extension: what the connection's user may do (daql's Status lacks it)
        assert res.pop("role") in ("reader", "writer"), text

    def walk(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: ("ERR" if k == "err" else "MIG" if k == "mig" else walk(v))
                    for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        if isinstance(x, str) and x != ZERO and _REV.fullmatch(f'"{x}"'):
            return "REV"
        return x

    return head, walk(obj)


class Conns:
    """The client connections of a replay, each opened on its first frame, and the frames
    each one received."""

    def __init__(self, hub: Hub):
        self.url = hub.url
        self.ws: dict[str, ClientConnection] = {}
        self.got: dict[str, list[str]] = {}

    async def send(self, f: DaqlFrame) -> None:
        if f.conn not in self.ws:
            self.ws[f.conn] = await connect(self.url)
        await self.ws[f.conn].send(f.text)

    async def recv(self, conn: str, timeout: float) -> None:
        text = await asyncio.wait_for(self.ws[conn].recv(), timeout)
        assert isinstance(text, str)
        self.got.setdefault(conn, []).append(text)

    async def close(self) -> None:
        for ws in self.ws.values():
            await ws.close()


async def replay(hub: Hub, frames: list[DaqlFrame]) -> dict[str, list[str]]:
    """Send each client frame in order and collect what each connection receives."""
    conns = Conns(hub)
    try:
        for i, f in enumerate(frames):
            if f.direction != "c2s":
                continue
            await conns.send(f)
            expect: dict[str, int] = {}
            for g in frames[i + 1:]:
                if g.direction == "c2s":
                    break
                expect[g.conn] = expect.get(g.conn, 0) + 1
            if f.text.startswith(("evt.nope#15", "evt.sub#14")) or not expect:
                expect.setdefault(f.conn, 0)
                expect[f.conn] = max(expect[f.conn], 1) if "#" in f.text.split("\n")[0] \
                    else expect[f.conn]
            for c, n in expect.items():
                for _ in range(n):
                    await conns.recv(c, 5)
    finally:
        await conns.close()
    return conns.got


async def replay_lenient(hub: Hub, frames: list[DaqlFrame]) -> dict[str, list[str]]:
    """Send every client frame, then read whatever arrives until quiet."""
    conns = Conns(hub)
    try:
        for f in frames:
            if f.direction != "c2s":
                continue
            await conns.send(f)
            await asyncio.sleep(0.05)
            for c in conns.ws:
                for _ in range(10):
                    try:
                        await conns.recv(c, 0.05)
                    except TimeoutError:
                        break
    finally:
        await conns.close()
    return conns.got


async def replay_session(prod: Project, session: str, *, lenient: bool = False
                         ) -> tuple[list[DaqlFrame], dict[str, list[str]]]:
    """The captured frames of ``session`` and what a fresh hub sent back to each connection."""
    frames = [f for f in FRAMES if f.session == session]
    async with Hub(MemLedger(prod)) as hub:
        got = await (replay_lenient if lenient else replay)(hub, frames)
    return frames, got


async def test_session1_replies_have_daql_shape(prod: Project) -> None:
    frames, got = await replay_session(prod, "session1")
    for conn in "ABCD":
        want = [f.text for f in frames if f.direction == "s2c" and f.conn == conn]
        have = got.get(conn, [])
        if conn == "A":
            # our extra error reply to the unknown subject
            extra = [t for t in have if t.startswith("evt.nope#15\n")]
            assert len(extra) == 1 and "unknown subject" in orjson.loads(
                extra[0].split("\n", 1)[1])["err"]
            have = [t for t in have if not t.startswith("evt.nope#15\n")]
        assert [norm(t) for t in have] == [norm(t) for t in want], conn
        for w, h in zip(want, have, strict=True):
            assert w.endswith("\n") == h.endswith("\n")  # pushes end with a newline
    # every evt.stat reply names the ledger, the same one (daql's never do)
    stats = [orjson.loads(t.split("\n", 1)[1])["res"] for t in got["A"]
             if t.startswith("evt.stat#")]
    assert len(stats) == 3 and len({s["ledger"] for s in stats}) == 1
    assert not any("ledger" in f.text for f in frames)


async def test_session2_same_events_reach_the_late_subscriber(prod: Project) -> None:
    frames, got = await replay_session(prod, "session2", lenient=True)
    ids: list[int] = []
    for t in got["A"]:
        body = orjson.loads(t.split("\n", 1)[1])
        res = body.get("res", body) if t.startswith("evt.sub") else body
        ids += [e["id"] for e in (res or {}).get("evs", [])]
    assert sorted(ids) == [1, 2, 4]
    want_b = [norm(f.text) for f in frames if f.direction == "s2c" and f.conn == "B"]
    assert [norm(t) for t in got["B"]] == want_b


async def test_go_client_frames_are_accepted(prod: Project) -> None:
    _, got = await replay_session(prod, "go-client", lenient=True)
    heads = [t.split("\n", 1)[0] for t in got["G"]]
    assert heads == ["evt.stat#1", "evt.sat", "evt.pub#2", "evt.sub#3"]
    bodies = [orjson.loads(t.split("\n", 1)[1]) for t in got["G"]]
    assert bodies[1] == {"res": {"rev": ZERO}}
    assert bodies[2]["res"]["evs"][0]["arg"] == {"name": "a </>"}
    assert bodies[3] == {"err": "no new subscriptions"}  # the sat subscribed prod.cat
