"""Large record values (operator review 14): a catch-up reads about what it sends, and the
hub's caches are bounded in bytes, not only in events.

A catch-up's batch read ``BACKLOG_BATCH`` (1,000) events with their values, sent the one or
two that fit in a frame and read the rest again for the next batch: 0.8-4 GB read per 800 KB
event sent, on the writer thread every publish waits for."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from core.ledger import SqlLedger
from core.model import Action, Cmd, Event, Trans
from core.schema import Project
from hubserver.catchup import Backlog
from hubserver.limits import Limits
from hubserver.service import Flush, HubService, Send
from tests.hub.conftest import Clock

Z = "0001-01-01T00:00:00Z"
BIG = 300_000  # characters of one value; a frame carries one (max_message 1 MiB: half)
N = 12


class Decoded(SqlLedger):
    """A real SQLite ledger that counts the event rows it decodes, by event id (every row
    an events read fetches is decoded)."""

    def __init__(self, url: str, project: Project):
        super().__init__(url, project)
        self.decoded: Counter[int] = Counter()

    def _event(self, row: Any) -> Event:  # type: ignore[override]
        e = SqlLedger._event(row)
        self.decoded[e.id] += 1
        return e


def _filled(prod: Project, tmp_path: Path) -> Decoded:
    led = Decoded(f"sqlite:///{tmp_path / 'hub.db'}", prod)
    # a small value first: a read sized by its first row fetched every large one after it
    led.publish(Trans((Action("prod.cat", "0", Cmd.NEW, {"name": "small"}),)), "u")
    for i in range(1, N):
        led.publish(Trans((Action("prod.cat", str(i), Cmd.NEW,
                                  {"name": chr(97 + i) * BIG}),)), "u")
    led.publish(Trans((Action("prod.prod", "1", Cmd.NEW, {"name": "small"}),)), "u")
    led.decoded.clear()
    return led


def _body(text: str) -> Any:
    return orjson.loads(text.partition("\n")[2])


def test_an_evt_sub_catch_up_of_large_values_reads_each_event_once(
        prod: Project, tmp_path: Path, clock: Clock) -> None:
    led = _filled(prod, tmp_path)
    try:
        svc = HubService(led, clock, Limits(max_message=1 << 20))
        svc.connect("S", "rita")
        outs = svc.handle_sync("S", "evt.sub#1\n" + orjson.dumps(
            {"rev": Z, "tops": ["prod.cat"]}).decode())
        frames = [o.text for o in outs if isinstance(o, Send)]
        rest = [o.catch_up for o in outs if isinstance(o, Flush)
                and isinstance(o.catch_up, Backlog)]
        assert len(frames) == 1 and len(rest) == 1  # the reply, then pushes
        # the reply read about one frame's events
        assert sum(led.decoded[i] for i in range(1, N + 1)) <= 3
        for _ in range(3 * N):  # bounded
            if not svc._backlogs.get("S"):
                break
            frames.extend(o.text for o in svc.catch_up_sync("S", rest[0])
                          if isinstance(o, Send))
        keys = []
        for f in frames:
            body = _body(f)
            keys.extend(e["key"] for e in (body.get("res") or body)["evs"])
            assert len(f) < 1 << 20
        assert keys == [str(i) for i in range(N)]  # every one, once, in order
        # each event read once: it read up to 1,000 a batch and sent one
        assert [led.decoded[i] for i in range(1, N + 1)] == [1] * N, led.decoded
    finally:
        led.close()


def test_an_evt_sat_catch_up_of_large_values_reads_about_what_it_sends(
        prod: Project, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``evt.sat`` catch-up from the ledger (older than the recent events): each reply
    reads the events it carries and at most the next revision (the one that did not fit),
    not ``max_batch`` of them."""
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
        assert max(reads) <= 2 and sum(reads) <= 2 * N, reads
    finally:
        led.close()


def _pub(i: int, size: int = BIG) -> str:
    return f"evt.pub#p{i}\n" + orjson.dumps({"acts": [{
        "top": "prod.cat", "key": str(i), "cmd": "new", "arg": {"name": "v" * size}}]}).decode()


def test_the_recent_events_are_bounded_in_bytes(prod: Project, tmp_path: Path, clock: Clock,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The events kept for evt.sat replies: 8,192 by count, and at most ``RECENT_BYTES``
    (halved when passed); an evt.sat reply still gets every event (from the ledger)."""
    monkeypatch.setattr(HubService, "RECENT_BYTES", 1 << 20, raising=False)
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", prod)
    try:
        svc = HubService(led, clock, Limits(max_message=1 << 20, rate=1e6, burst=10**6))
        svc.connect("A", "ann")
        svc.connect("S", "sat")
        for i in range(N):
            svc.handle_sync("A", _pub(i))
        assert 1 <= len(svc._recent) <= 4  # 300 KB each: 8,192 of them were kept
        assert sum(len(orjson.dumps(e.arg)) for e in svc._recent.after(svc._recent.floor, [
            "prod.cat"])) <= 1 << 20
        rev, keys = Z, []
        for i in range(3 * N):  # bounded
            req = {"rev": rev, "tops": ["prod.cat"], "trans": [], "cont": True}
            (out,) = [o for o in svc.handle_sync("S", f"evt.sat#{i}\n" + orjson.dumps(
                req).decode()) if isinstance(o, Send)]
            res = _body(out.text)["res"]
            keys.extend(e["key"] for e in res.get("evs", ()))
            rev = res["rev"]
            if not res.get("more"):
                break
        assert keys == [str(i) for i in range(N)]
    finally:
        led.close()


def test_a_subscriber_that_does_not_read_is_closed_past_its_bytes(
        prod: Project, clock: Clock) -> None:
    """Pushes waiting for a connection are bounded in bytes too (``max_pending_bytes``):
    past it the connection is closed with 1013 as past ``max_pending`` events; a subscriber
    of other topics is not concerned."""
    from core.ledger import MemLedger
    from hubserver.limits import CLOSE_TOO_SLOW
    from hubserver.service import Close

    svc = HubService(MemLedger(prod), clock, Limits(max_pending_bytes=1 << 20, rate=1e6,
                                                    burst=10**6))
    for c in ("A", "B", "C"):
        svc.connect(c, "ann")
    for c, top in (("B", "prod.cat"), ("C", "prod.prod")):
        svc.handle_sync(c, "evt.sub#s\n" + orjson.dumps({"rev": Z, "tops": [top]}).decode())
    closes: list[tuple[int, Close]] = []
    for i in range(8):  # B never takes its pushes: 300 KB each
        outs = svc.handle_sync("A", _pub(i))
        closes.extend((i, o) for o in outs if isinstance(o, Close) and o.conn == "B")
        assert not any(isinstance(o, Close) and o.conn in ("A", "C") for o in outs)
    # the first publish's events are not counted (one frame's); past 1 MiB with the fifth
    assert [i for i, _ in closes] == [4], closes
    close = closes[0][1]
    assert close.code == CLOSE_TOO_SLOW and "1,048,576 bytes" in close.reason
    assert len(close.reason.encode()) <= 120
    assert "B" not in svc.subs and svc.pending("B") == 0


def test_events_read_ahead_of_a_topic_unsubscribed_meanwhile_are_not_pushed(
        prod: Project, tmp_path: Path, clock: Clock) -> None:
    """An ``evt.unsub`` while an ``evt.sub`` reply is still to send narrows the pushes after
    it: the events its batch read but had no room for (kept for the next batch) of the
    topic left are not pushed."""
    led = Decoded(f"sqlite:///{tmp_path / 'hub.db'}", prod)
    try:
        for i in range(1, 9):
            top = "prod.cat" if i % 2 else "prod.prod"
            led.publish(Trans((Action(top, str(i), Cmd.NEW, {"name": "v" * BIG}),)), "u")
        svc = HubService(led, clock, Limits(max_message=1 << 20))
        svc.connect("S", "rita")
        outs, job = svc.handle("S", "evt.sub#1\n" + orjson.dumps(
            {"rev": Z, "tops": ["prod.cat", "prod.prod"]}).decode())
        (b,) = [o.catch_up for o in outs if isinstance(o, Flush)
                and isinstance(o.catch_up, Backlog)]
        assert job is None and b.reply is not None  # the reply is still to send
        svc.handle_sync("S", "evt.unsub#2\n" + orjson.dumps(
            {"rev": Z, "tops": ["prod.prod"]}).decode())
        frames = []
        for _ in range(20):  # bounded
            if not svc._backlogs.get("S"):
                break
            frames.extend(o.text for o in svc.catch_up_sync("S", svc._backlogs["S"][0])
                          if isinstance(o, Send))
        pushed = [e["top"] + ":" + e["key"] for f in frames[1:]
                  for e in _body(f).get("evs", ())]
        reply = [e["top"] + ":" + e["key"] for e in _body(frames[0])["res"]["evs"]]
        assert reply == ["prod.cat:1"]  # one value a frame: prod.prod:2 read ahead
        assert pushed == ["prod.cat:3", "prod.cat:5", "prod.cat:7"], pushed
    finally:
        led.close()
