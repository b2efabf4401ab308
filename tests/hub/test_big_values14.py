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
    for i in range(N):
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
