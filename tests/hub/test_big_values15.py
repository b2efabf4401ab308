"""Large values, session 15: the cluster's reads of other hubs' revisions are bounded in bytes
(the gap read after an own commit and the wake-up catch-up), an ``evt.sat`` catch-up reads
each event once, a push never exceeds the hub's ``max_message``."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from core.ledger import SqlLedger
from core.model import Action, Cmd, Trans
from core.schema import Project
from hubserver import fanout, pipeline
from hubserver.limits import Limits
from hubserver.server import Hub
from hubserver.service import Flush, HubService, Send
from tests.hub.conftest import Clock, recv_json, request
from tests.hub.test_big_values14 import BIG, Decoded, N, _body, _filled

Z = "0001-01-01T00:00:00Z"


def _sub(svc: HubService, conn: str, rev: str = Z) -> None:
    svc.handle_sync(conn, "evt.sub\n" + orjson.dumps({"rev": rev, "tops": ["prod.cat"]}).decode())


class Reads:
    """Records every ``events`` read of a ledger: how many events each returned."""

    def __init__(self, led: SqlLedger, monkeypatch: pytest.MonkeyPatch):
        self.sizes: list[int] = []
        real = led.events

        def events(*a: Any, **k: Any) -> Any:
            got = real(*a, **k)
            self.sizes.append(len(got))
            return got

        monkeypatch.setattr(led, "events", events)


def test_the_gap_read_after_an_own_commit_is_bounded_in_bytes(
        prod: Project, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another hub published N large values on the shared ledger; this hub's next commit
    finds the hole in the event ids and fans them out first: in reads of about
    ``GAP_BYTES``, each event once, every one pushed in order. It read everything after its
    revision in one read (every value of the gap, and its own revisions too)."""
    monkeypatch.setattr(fanout, "GAP_BYTES", 2 * BIG, raising=False)
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    led = Decoded(url, prod)
    other = SqlLedger(url, prod)  # "another hub" on the same ledger
    try:
        svc = HubService(led, clock, Limits(max_message=8 << 20))
        svc.connect("S", "rita")
        svc.connect("W", "will")
        _sub(svc, "S")
        other.publish(Trans((Action("prod.cat", "0", Cmd.NEW, {"name": "small"}),)), "u")
        for i in range(1, N):
            other.publish(Trans((Action("prod.cat", str(i), Cmd.NEW,
                                        {"name": chr(97 + i) * BIG}),)), "u")
        reads = Reads(led, monkeypatch)
        led.decoded.clear()
        outs = svc.handle_sync("W", "evt.pub#1\n" + orjson.dumps({"acts": [{
            "top": "prod.cat", "key": "99", "cmd": "new", "arg": {"name": "x"}}]}).decode())
        assert any(isinstance(o, Send) and '"res"' in o.text for o in outs), outs
        assert reads.sizes and max(reads.sizes) <= 4, reads.sizes
        assert max(led.decoded.values()) == 1, led.decoded  # each event read once
        keys = []
        for _ in range(3 * N):  # bounded
            text = svc.take_push("S")
            if text is None:
                break
            keys.extend(e["key"] for e in _body(text)["evs"])
        assert keys == [str(i) for i in range(N)] + ["99"]
    finally:
        other.close()
        led.close()


def test_a_cluster_catch_up_read_is_bounded_in_bytes(
        prod: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wake-up read of other hubs' revisions (``NOTIFY``, timer) reads about
    ``CATCH_UP_BYTES`` and says more follow; read again until it does not, it has read
    every event once."""
    monkeypatch.setattr(Hub, "CATCH_UP_BYTES", 2 * BIG, raising=False)
    led = _filled(prod, tmp_path)
    try:
        hub = Hub(led, port=0)
        led.decoded.clear()  # the service read the last event when it started
        rev, got, reads = 0, [], 0
        for _ in range(3 * N):  # bounded
            evs, more = pipeline._read_others(hub, rev)
            reads += 1
            assert len(evs) <= 3
            got.extend(evs)
            if not more:
                break
            rev = evs[-1].rev
        assert [e.key for e in got] == [str(i) for i in range(N)] + ["1"]
        assert reads >= N // 3
        assert max(led.decoded.values()) == 1, led.decoded
    finally:
        led.close()


def test_an_evt_sat_catch_up_of_large_values_reads_each_event_once(
        prod: Project, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``evt.sat`` catch-up from the ledger: the revision a reply read but had no room
    for is carried to the connection's next reply (a satellite asks from where the reply
    ended), not read again. Session 14's reads: each value up to twice."""
    monkeypatch.setattr(HubService, "RECENT_EVENTS", 1)
    led = _filled(prod, tmp_path)
    try:
        svc = HubService(led, clock, Limits(max_message=1 << 20))
        svc.connect("S", "sat")
        rev, keys = Z, []
        for i in range(3 * N):  # bounded
            req = {"rev": rev, "tops": ["prod.cat"], "trans": [], "cont": True, "lim": 1000}
            (out,) = [o for o in svc.handle_sync("S", f"evt.sat#{i}\n" + orjson.dumps(
                req).decode()) if isinstance(o, Send)]
            res = _body(out.text)["res"]
            keys.extend(e["key"] for e in res.get("evs", ()))
            rev = res["rev"]
            if not res.get("more"):
                break
        assert keys == [str(i) for i in range(N)]
        reads = [led.decoded[i] for i in range(1, N + 1)]
        assert max(reads) == 1, reads
    finally:
        led.close()


def test_a_daql_clients_evt_sat_catch_up_pushes_the_rest_reading_each_event_once(
        prod: Project, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A daql client's ``evt.sat`` (no ``cont``, ``lim``, uids): the reply cut by its bytes
    is followed by pushes of the rest; they start with what the reply read past its end."""
    monkeypatch.setattr(HubService, "RECENT_EVENTS", 1)
    led = _filled(prod, tmp_path)
    try:
        svc = HubService(led, clock, Limits(max_message=1 << 20))
        svc.connect("D", "daql")
        outs = svc.handle_sync("D", "evt.sat#1\n" + orjson.dumps(
            {"rev": Z, "tops": ["prod.cat"], "trans": []}).decode())
        frames = [o.text for o in outs if isinstance(o, Send)]
        rest = [o.catch_up for o in outs if isinstance(o, Flush) and o.catch_up is not None]
        assert len(frames) == 1 and len(rest) == 1, outs
        for _ in range(3 * N):  # bounded
            if not svc._backlogs.get("D"):
                break
            frames.extend(o.text for o in svc.catch_up_sync("D", rest[0]) if isinstance(o, Send))
        keys = []
        for f in frames:
            b = _body(f)
            keys.extend(e["key"] for e in (b.get("res", b)).get("evs", ()))
        assert keys == [str(i) for i in range(N)]
        reads = [led.decoded[i] for i in range(1, N + 1)]
        assert max(reads) == 1, reads
    finally:
        led.close()


SMALL_MAX = 64 * 1024  # the smallest --max-message
PART = 20_000  # one value: a frame holds three


def _others(url: str, prod: Project, n: int, first: int = 1) -> None:
    """Another hub's publishes on the same ledger: ``n`` values of ``PART`` characters."""
    other = SqlLedger(url, prod)
    try:
        for i in range(first, first + n):
            other.publish(Trans((Action("prod.cat", str(i), Cmd.NEW,
                                        {"name": chr(97 + i % 26) * PART}),)), "u")
    finally:
        other.close()


async def test_a_push_never_exceeds_max_message(prod: Project, tmp_path: Path) -> None:
    """Revisions of other hubs fanned out together (a cluster catch-up: 10 values of 20 KB,
    200 KB) reach a subscriber holding to the hub's ``max_message`` (64 KiB) in several
    frames, in order, none over it. In one frame, the client closed with 1009, resynced and
    got the same frame again."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    led = SqlLedger(url, prod)
    async with Hub(led, port=0, limits=Limits(max_message=SMALL_MAX),
                   close_ledger=True) as hub, connect(hub.url, max_size=SMALL_MAX) as s:
        assert await request(s, "evt.sub", {"rev": Z, "tops": ["prod.cat"]}) == \
                {"res": None}
        await asyncio.to_thread(_others, url, prod, 10)
        hub.request_catch_up()
        keys: list[str] = []
        sizes: list[int] = []
        for _ in range(40):  # bounded
            text = await asyncio.wait_for(s.recv(), 10)
            assert isinstance(text, str)
            sizes.append(len(text.encode()))
            body = orjson.loads(text.partition("\n")[2])
            keys.extend(e["key"] for e in body["evs"])
            if len(keys) >= 10:
                break
    assert keys == [str(i) for i in range(1, 11)]
    assert len(sizes) >= 4 and max(sizes) <= SMALL_MAX, sizes


def test_a_sealed_push_over_max_message_is_sent_in_parts_before_what_follows(
        prod: Project, tmp_path: Path, clock: Clock) -> None:
    """A push sealed ahead of a reply (:meth:`HubService.seal`) and over ``max_message``:
    taken again and again (``sealed_left``) it gives every event once, in frames within
    the limit, and leaves nothing sealed."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    led = SqlLedger(url, prod)
    try:
        svc = HubService(led, clock, Limits(max_message=SMALL_MAX))
        svc.connect("S", "rita")
        _sub(svc, "S")
        _others(url, prod, 10)
        svc.catch_up(led.events(svc.rev))
        d = svc.seal("S")
        assert d is not None and len(d.evs) == 10
        keys, sizes = [], []
        for _ in range(40):  # bounded
            text = svc.take_sealed("S", d)
            assert text is not None
            sizes.append(len(text.encode()))
            keys.extend(e["key"] for e in _body(text)["evs"])
            if not svc.sealed_left("S", d):
                break
        assert keys == [str(i) for i in range(1, 11)]
        assert len(sizes) >= 4 and max(sizes) <= SMALL_MAX, sizes
        assert svc.push_counts() == (0, 0, 0)
    finally:
        led.close()


class Held(SqlLedger):
    """A real SQL ledger whose catch-up reads (``events`` with ``max_bytes``) wait while
    ``hold`` is clear, saying so with ``reading``."""

    def __init__(self, url: str, project: Project):
        super().__init__(url, project)
        self.hold = threading.Event()
        self.hold.set()
        self.reading = threading.Event()

    def events(self, rev: Any, tops: Any = None, limit: int = 0,  # type: ignore[override]
               max_bytes: int = 0) -> Any:
        if max_bytes and not self.hold.is_set():
            self.reading.set()
            self.hold.wait(60)
        return super().events(rev, tops, limit, max_bytes)


async def test_a_catch_up_read_does_not_hold_publishes(prod: Project, sql_url: str) -> None:
    """A reader's catch-up read runs on the hub's reader thread (SQLite in WAL mode,
    PostgreSQL): while it is held, another user's publish is committed and acked; then the
    reader gets its catch-up and the new event after it, once each. On the writer thread
    (session 14) the publish waited for the read."""
    led = Held(sql_url, prod)
    for i in range(3):
        led.publish(Trans((Action("prod.cat", str(i), Cmd.NEW, {"name": f"n{i}"}),)), "u")
    async with Hub(led, port=0, close_ledger=True) as hub:
        assert hub._reader is not None
        async with connect(hub.url) as s, connect(hub.url) as w:
            led.hold.clear()
            await s.send("evt.sub#s\n" + orjson.dumps({"rev": Z, "tops": ["prod.cat"]}).decode())
            assert await asyncio.to_thread(led.reading.wait, 30)
            acked_while_held = False
            try:
                res = await request(w, "evt.pub", {"acts": [{
                    "top": "prod.cat", "key": "9", "cmd": "new", "arg": {"name": "w"}}]},
                    timeout=10)
                acked_while_held = not led.hold.is_set()
            finally:
                led.hold.set()
            assert "res" in res, res
            keys: list[str] = []
            for _ in range(10):  # bounded
                _head, body = await recv_json(s, 10)
                got = body.get("res", body) if isinstance(body, dict) else None
                keys.extend(e["key"] for e in (got or {}).get("evs", ()))
                if "9" in keys:
                    break
    assert acked_while_held
    assert keys == ["0", "1", "2", "9"]
