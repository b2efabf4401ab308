"""A hub with a small ``--max-message``: the satellite keeps its ``evt.sat`` requests under
the limit the hub serves in ``evt.stat``, halves its batches after a close with 1009 from a
hub that does not serve it, and shows an edit bigger than the limit to its user as an error
on that edit instead of reconnecting for ever (review session 7, MEDIUM 5)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.errors import HubError
from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Trans
from core.revision import Rev, format_rev
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient, hub_close_code
from core.satellite.machine import (
    CLOSE_TOO_BIG,
    MIN_SAT_BYTES,
    SAT_BYTES,
    Backoff,
    Phase,
    SyncMachine,
    frames_of,
)
from core.satellite.satellite import Satellite
from core.schema import Project
from core.wire import SatRes, format_reply
from hubserver.limits import MIN_MAX_MESSAGE, Limits
from hubserver.server import Hub
from tests.hub.conftest import request
from tests.satellite.test_machine import FakeStore, body, sat_reply
from tests.satellite.test_machine import handshake as machine_handshake

SITE = "field.site"
ROOT = Path(__file__).resolve().parents[2]


def big(uid: str, size: int) -> Trans:
    return Trans((Action(SITE, uid, Cmd.NEW, {"name": uid, "notes": "x" * size}),), uid=uid)


def handshake(m: SyncMachine, max_message: int | None, rev: Rev = 0) -> str:
    # an Outpost hub that acks by uid ("acks"), with or without its limit
    res: dict[str, object] = {"rev": format_rev(rev), "mig": "v1", "acks": True}
    if max_message is not None:
        res["max_message"] = max_message
    [sat] = machine_handshake(m, format_reply("evt.stat", "1", res))
    return sat


def test_requests_stay_under_the_limit_the_hub_serves() -> None:
    st = FakeStore()
    st.pending = [big(f"u{i}", 2000) for i in range(200)]  # ~420 KB
    m = SyncMachine(st, random.Random(1), first_trans=1000)
    sat = handshake(m, 65536)
    sizes, tok = [], 2
    while True:
        sizes.append(len(sat.encode()))
        _, b = body(sat)
        uids = [t["uid"] for t in b["trans"]]
        m.received(sat_reply(str(tok), SatRes(0, acks=())), 1.0)  # nothing acked: resent later
        st.pending = [t for t in st.pending if t.uid not in uids]
        tok += 1
        out = frames_of(m.take())
        if not st.pending or not out:
            break
        sat = out[0]
    assert len(sizes) > 5 and max(sizes) <= 65536, sizes
    assert SAT_BYTES > 65536  # without the hub's limit a request would have been bigger


def test_an_edit_bigger_than_the_hub_takes_is_an_error_on_that_edit() -> None:
    st = FakeStore()
    st.pending = [big("small1", 100), big("huge", 100_000), big("small2", 100)]
    m = SyncMachine(st, random.Random(1))
    sat = handshake(m, 65536)
    _, b = body(sat)
    assert [t["uid"] for t in b["trans"]] == ["small1", "small2"]
    assert "huge" in st.rejected and "not sent" in st.rejected["huge"]
    assert "65,536 bytes, its --max-message" in st.rejected["huge"]


def test_a_close_with_1009_halves_the_batch_for_a_hub_that_does_not_say_its_limit() -> None:
    st = FakeStore()
    st.pending = [big(f"u{i}", 2000) for i in range(400)]
    m = SyncMachine(st, random.Random(1), first_trans=1000)
    handshake(m, None)
    assert m.max_bytes == SAT_BYTES
    reason = "the connection closed: received 1009 (message too big) frame exceeds limit"
    for want in (SAT_BYTES // 2, SAT_BYTES // 4):
        m.disconnected(1.0, reason, CLOSE_TOO_BIG)
        assert m.max_bytes == want
        m.tick(1000.0)
        m.take()
        m.connected(1000.0)
        [stat] = frames_of(m.take())
        tok = stat.split("#", 1)[1]
        m.received(format_reply("evt.stat", tok, {"rev": format_rev(0), "mig": "v1",
                                                       "acks": True}), 1000.0)
        [sat] = frames_of(m.take())
        assert len(sat.encode()) <= want + 4096
    for _ in range(10):
        m.disconnected(2.0, reason, CLOSE_TOO_BIG)
        m._sat_out = 1  # as if a request were in flight again
    assert m.max_bytes == MIN_SAT_BYTES


async def test_a_hub_with_a_small_max_message_syncs_a_big_queue(tmp_path: Path,
                                                                 project: Project) -> None:
    limit = 131072
    async with Hub(MemLedger(project), port=0, limits=Limits(max_message=limit)) as hub:
        from websockets.asyncio.client import connect

        async with connect(hub.url) as ws:
            stat = await request(ws, "evt.stat", None)
            assert stat["res"]["max_message"] == limit
        sat = Satellite(tmp_path / "a", project)
        try:
            note = "x" * 2000
            uids = [sat.pub([Action(SITE, f"s{i}", Cmd.NEW, {"name": f"n{i}", "notes": note})])
                    for i in range(300)]  # ~630 KB: several requests under 128 KiB
            huge = sat.pub([Action(SITE, "huge", Cmd.NEW, {"name": "h", "notes": "y" * 200_000})])
            # was: closed with 1009 on every retry, for ever
            await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(30)
            for u in (uids[0], uids[-1]):
                r = sat.receipt(u)
                assert r is not None and r.state == ReceiptState.ACCEPTED
            r = sat.receipt(huge)
            assert r is not None and r.state == ReceiptState.REJECTED
            assert "--max-message" in r.err
            st = sat.status()
            assert st.pending == 0 and st.conflicts == 1
            assert len(hub.ledger.keys(SITE)) == 300
        finally:
            sat.close()


def test_serve_refuses_a_max_message_too_small_to_be_useful(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "hubserver.cli", "serve", "--db",
                        str(tmp_path / "hub.db"), "--port", "0", "--auth", "none",
                        "--max-message", "1000"], capture_output=True, text=True,
                       cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=60)
    assert r.returncode == 2
    assert f"the least the hub takes is {MIN_MAX_MESSAGE} bytes" in r.stderr
    assert not (tmp_path / "hub.db").exists()



def _reconnect(m: SyncMachine, now: float, rev: Rev = 0) -> str | None:
    """Reconnect after the backoff to a hub that does not serve its limit: the evt.sat."""
    m.tick(now)
    m.take()
    m.connected(now)
    [stat] = frames_of(m.take())
    tok = stat.split("#", 1)[1]
    m.received(format_reply("evt.stat", tok, {"rev": format_rev(rev), "mig": "v1",
                                                     "acks": True}), now)
    sats = frames_of(m.take())
    return sats[0] if sats else None


def test_a_lone_edit_closed_on_with_1009_is_rejected_and_the_rest_go_on() -> None:
    """A hub that does not say its limit (daql) closes with 1009 on a request of ONE
    transaction: halving cannot help, so it is stored rejected (was: resent for ever)."""
    st = FakeStore()
    st.pending = [big("small1", 100), big("huge", 100_000), big("small2", 100)]
    m = SyncMachine(st, random.Random(1))
    sat: str | None = handshake(m, None)
    now, sent = 1.0, []
    while sat is not None and "huge" not in st.rejected and len(sent) < 10:
        uids = [t["uid"] for t in body(sat)[1]["trans"]]
        sent.append(uids)
        if "huge" in uids:
            m.disconnected(now, "closed: received 1009 (message too big)", CLOSE_TOO_BIG)
        else:
            tok = sat.split("#", 1)[1].split("\n", 1)[0]
            m.received(sat_reply(tok, SatRes(0, acks=())), now)
            st.pending = [t for t in st.pending if t.uid not in uids]
            m.disconnected(now, "closed")
        now += 1000.0
        sat = _reconnect(m, now)
    assert sent[-1] == ["huge"] and "huge" in st.rejected, sent
    err = st.rejected["huge"]
    assert "too big for this hub's message limit" in err and "is 100,1" in err, err
    assert "split it into several edits" in err and "raise the hub's message limit" in err
    # the next request carries the others, not the rejected edit
    assert sat is not None
    assert [t["uid"] for t in body(sat)[1]["trans"]] == [
        u for u in ("small1", "small2") if any(t.uid == u for t in st.pending)]


def test_only_the_close_code_counts_not_the_close_text() -> None:
    """'received 1009' in the reason without the code (a 1009 this side sent, echoed by the
    hub, reads "sent 1009 ...; then received 1009 ..."): nothing halved, nothing rejected."""
    st = FakeStore()
    st.pending = [big("huge", 100_000)]
    m = SyncMachine(st, random.Random(1))
    handshake(m, None)
    m.disconnected(1.0, "sent 1009 (message too big); then received 1009 (message too big)")
    assert m.max_bytes == SAT_BYTES and not st.rejected


def test_hub_close_code_is_the_code_the_hub_sent_first() -> None:
    from websockets.exceptions import ConnectionClosedError
    from websockets.frames import Close

    too_big = Close(CLOSE_TOO_BIG, "frame exceeds limit")
    assert hub_close_code(ConnectionClosedError(too_big, too_big, True)) == CLOSE_TOO_BIG
    assert hub_close_code(ConnectionClosedError(too_big, None)) == CLOSE_TOO_BIG
    # this side sent 1009 (a reply too big for it) and the hub echoed it
    assert hub_close_code(ConnectionClosedError(too_big, too_big, False)) == 0
    assert hub_close_code(ConnectionClosedError(None, None)) == 0


def test_a_1009_with_two_requests_in_flight_keeps_one_in_flight_from_then_on() -> None:
    """Which of two pipelined requests was too big is not known: none is rejected, and
    later connections keep one request in flight, so the next 1009 names its edit."""
    st = FakeStore()
    st.pending = [big(f"u{i}", 100) for i in range(6)]
    m = SyncMachine(st, random.Random(1), max_trans=1)
    handshake(m, None)
    m.received(sat_reply("2", SatRes(6000, acks=(), cont=True)), 1.0)
    assert len(frames_of(m.take())) == 2  # u0 (not acked: resent) and u1 in flight
    m.disconnected(1.0, "closed", CLOSE_TOO_BIG)
    assert not st.rejected and m.max_bytes == SAT_BYTES // 2
    sat = _reconnect(m, 1000.0, 6000)
    assert sat is not None
    m.received(sat_reply("6", SatRes(6000, acks=(), cont=True)), 1000.0)
    assert len(frames_of(m.take())) == 1  # was 2


async def _daql_like_proxy(upstream: str, max_size: int) -> Any:
    """A websockets server on 127.0.0.1 in front of ``upstream`` as a daql hub is seen: its
    evt.stat says no max_message (nor cont), and a frame over ``max_size`` is closed on with
    1009."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    async def pipe(src: Any, dst: Any, strip: bool) -> None:
        async for text in src:
            head, _, rest = text.partition("\n")
            if strip and head.startswith("evt.stat#"):
                obj = json.loads(rest)
                obj["res"].pop("max_message", None)
                obj["res"].pop("cont", None)  # nor that it honours cont (session 10)
                text = f"{head}\n{json.dumps(obj)}"
            await dst.send(text)

    async def handler(ws: ServerConnection) -> None:
        async with connect(upstream, max_size=None) as up:
            tasks = [asyncio.ensure_future(pipe(ws, up, False)),
                     asyncio.ensure_future(pipe(up, ws, True))]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in tasks:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await t

    return serve(handler, "127.0.0.1", 0, max_size=max_size)


async def test_a_daql_like_hub_gets_the_rest_and_a_lone_too_big_edit_is_rejected(
        tmp_path: Path, project: Project) -> None:
    """Real websockets on 127.0.0.1: a hub without the max_message extension and a 64 KiB
    frame limit. The edit too big for it alone is stored rejected with its size and the
    fix; every other edit is accepted (was: the lone edit resent for ever, 1009 each time)."""
    async with Hub(MemLedger(project), port=0) as hub, \
            await _daql_like_proxy(hub.url, 64 * 1024) as proxy:
        url = f"ws://127.0.0.1:{proxy.sockets[0].getsockname()[1]}"
        sat = Satellite(tmp_path / "a", project)
        try:
            uids = [sat.pub([Action(SITE, f"s{i}", Cmd.NEW, {"name": f"n{i}"})])
                    for i in range(20)]
            huge = sat.pub([Action(SITE, "huge", Cmd.NEW, {"name": "h", "notes": "y" * 100_000})])
            uids += [sat.pub([Action(SITE, f"t{i}", Cmd.NEW, {"name": f"m{i}"})])
                     for i in range(20)]
            client = SyncClient(sat, url, rnd=random.Random(0), backoff=Backoff(0.05, 0.2))
            await client.sync_once(30)
            for u in uids:
                r = sat.receipt(u)
                assert r is not None and r.state == ReceiptState.ACCEPTED
            r = sat.receipt(huge)
            assert r is not None and r.state == ReceiptState.REJECTED
            assert "too big for this hub's message limit" in r.err and "is 100,1" in r.err
            st = sat.status()
            assert st.pending == 0 and st.conflicts == 1
            assert len(hub.ledger.keys(SITE)) == 40 and client.machine.max_bytes < SAT_BYTES
        finally:
            sat.close()


def _seeded(project: Project, sizes: list[int]) -> MemLedger:
    led = MemLedger(project)
    for i, n in enumerate(sizes):
        led.publish(Trans((Action(SITE, f"b{i}", Cmd.NEW, {"name": f"b{i}", "notes": "z" * n}),)),
                    "office")
    return led


async def test_an_outpost_hubs_batch_over_the_satellites_limit_is_asked_again_smaller(
        tmp_path: Path, project: Project) -> None:
    """Session 12's note: a catch-up batch of an Outpost hub over the satellite's message
    limit (``max_reply_mib``) made it reconnect with backoff for ever, asking for the same
    batch. Now it asks again with half the ``lim`` each time (down to 1), and once caught up
    asks with its own again; one event too big stops sync, naming ``max_reply_mib``."""
    async with Hub(_seeded(project, [40_000] * 30), port=0) as hub:  # ~1.2 MB in all
        sat = Satellite(tmp_path / "a", project)
        try:
            client = SyncClient(sat, hub.url, rnd=random.Random(0), max_message=200_000)
            await client.sync_once(60)  # was: HubError after 60 s of the same 1009
            assert sat.count(SITE) == 30
            m = client.machine
            assert m._lim_cut == 0 and m._ask_lim == 5000  # caught up: its own lim again
            assert m.info.last_error == ""
        finally:
            sat.close()
    async with Hub(_seeded(project, [1000, 300_000]), port=0) as hub:
        sat = Satellite(tmp_path / "b", project)
        try:
            client = SyncClient(sat, hub.url, rnd=random.Random(0), max_message=200_000)
            with pytest.raises(HubError) as err:
                await client.sync_once(60)
            said = str(err.value)
            assert "even when asked for one event at a time" in said, said
            assert '"max_reply_mib": 4' in said and "sync stopped" in said, said
            assert client.machine.phase == Phase.STOPPED
            assert sat.count(SITE) == 1  # the batch before it was stored
        finally:
            sat.close()
