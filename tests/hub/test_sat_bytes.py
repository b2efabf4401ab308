"""An ``evt.sat`` reply is bounded in bytes, not only in events: a catch-up of big events
comes as several replies (``more``), each about the hub's ``max_message`` at most (the first
whole revisions that fit, at least one revision), none lost or repeated."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from core.ledger import MemLedger
from core.model import Action, Cmd, Event, Trans
from core.schema import Project
from hubserver.limits import Limits
from hubserver.satreply import fit
from hubserver.service import HubService, Send
from tests.hub.conftest import Clock

Z = "0001-01-01T00:00:00Z"
LIMIT = 64 * 1024


def _catch_up(hub: HubService, conn: str, tok: int) -> tuple[list[Any], list[int]]:
    """Every event of prod.cat from the start, request after request while ``more``."""
    rev, evs, sizes = Z, [], []
    for i in range(100):  # bounded
        req = {"rev": rev, "tops": ["prod.cat"], "trans": [], "cont": True, "audits": True}
        (out,) = [o for o in hub.handle_sync(conn, f"evt.sat#{tok + i}\n"
                                             + orjson.dumps(req).decode())
                  if isinstance(o, Send)]
        sizes.append(len(out.text.encode()))
        res = orjson.loads(out.text.partition("\n")[2])["res"]
        evs.extend(res.get("evs", ()))
        rev = res["rev"]
        if not res.get("more"):
            return evs, sizes
    raise AssertionError("the catch-up did not end")


@pytest.mark.parametrize("recent", [8192, 16])  # from the recent events / from the ledger
def test_a_catch_up_of_big_events_comes_in_frames_of_about_max_message(
        prod: Project, clock: Clock, recent: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HubService, "RECENT_EVENTS", recent)
    ledger = MemLedger(prod)
    note = "n" * 2000
    for i in range(0, 300, 3):  # 300 events of ~2 KB, three per revision: ~600 KB
        ledger.publish(Trans(tuple(Action("prod.cat", str(1000 + j), Cmd.NEW, {"name": note})
                                   for j in range(i, i + 3))), "u")
    hub = HubService(ledger, clock, Limits(max_message=LIMIT))
    hub.connect("S", "sat")
    evs, sizes = _catch_up(hub, "S", 1)
    assert [e["key"] for e in evs] == [str(1000 + j) for j in range(300)]  # all, once, in order
    assert len(sizes) >= 9 and max(sizes) <= LIMIT, sizes  # audits and all
    # a revision bigger than the limit still goes, whole, in a reply of its own
    ledger.publish(Trans(tuple(Action("prod.cat", str(5000 + j), Cmd.NEW, {"name": "b" * 30_000})
                               for j in range(4))), "u")
    hub2 = HubService(ledger, clock, Limits(max_message=LIMIT))
    hub2.connect("T", "sat")
    evs, sizes = _catch_up(hub2, "T", 500)
    assert len(evs) == 304 and [e["key"] for e in evs[-4:]] == ["5000", "5001", "5002", "5003"]


def test_fit_keeps_whole_revisions() -> None:
    def ev(i: int, rev: int, size: int) -> Event:
        return Event(i, rev, "prod.cat", f"k{i}", Cmd.NEW, {"name": "x" * size})

    small = [ev(i, 10 + i // 2, 10) for i in range(10)]
    assert fit(small, 1 << 20) == 10
    big = [ev(i, 10 + i // 2, 400) for i in range(10)]  # ~500 bytes each, two per revision
    assert fit(big, 1200) == 2  # the first revision (1,000 bytes); the second would pass
    assert fit(big, 2100) == 4
    assert fit(big, 100) == 2  # at least the first revision
    assert fit(big[:1], 10) == 1 and fit([], 10) == 0
    # the bytes counted when they were fanned out (RecentEvents.tail_bytes): within half
    # the budget, all without encoding them; over it, cut as before
    assert fit(big, 1200, known=600) == 10
    assert fit(big, 1200, known=601) == 2 and fit(big, 2100, known=5000) == 4


def test_a_replays_reply_over_the_budget_is_cut_though_its_bytes_are_known(
        prod: Project, clock: Clock) -> None:
    """A reply made of the request's own events (the recent events' newest: fit takes their
    counted bytes) still comes in frames of about max_message when they are too big."""
    hub = HubService(MemLedger(prod), clock, Limits(max_message=LIMIT))
    hub.connect("S", "sat")
    trans = [{"uid": f"u{i}", "acts": [{"top": "prod.cat", "key": str(i), "cmd": "new",
                                        "arg": {"name": "n" * 2000}}]} for i in range(25)]
    req = {"rev": Z, "tops": ["prod.cat"], "trans": trans, "cont": True, "audits": True}
    (out,) = [o for o in hub.handle_sync("S", "evt.sat#1\n" + orjson.dumps(req).decode())
              if isinstance(o, Send)]
    res = orjson.loads(out.text.partition("\n")[2])["res"]
    assert len(res["acks"]) == 25 and res["more"] and 0 < len(res["evs"]) < 25
    assert len(out.data) <= LIMIT
    evs, _sizes = _catch_up(hub, "S", 2)
    assert [e["key"] for e in res["evs"] + evs] == [str(i) for i in range(25)]


def test_an_evt_sub_catch_up_of_big_events_comes_in_frames_of_about_max_message(
        prod: Project, clock: Clock) -> None:
    """The same bound for a daql client's evt.sub catch-up: its reply and the pushes after
    it, each about max_message at most, every event once and in order."""
    ledger = MemLedger(prod)
    for i in range(0, 300, 3):
        ledger.publish(Trans(tuple(Action("prod.cat", str(1000 + j), Cmd.NEW, {"name": "n" * 2000})
                                   for j in range(i, i + 3))), "u")
    hub = HubService(ledger, clock, Limits(max_message=LIMIT))
    hub.connect("S", "sub")
    outs = hub.handle_sync("S", f'evt.sub#1\n{{"rev":"{Z}","tops":["prod.cat"]}}')
    texts = [o.text for o in outs if isinstance(o, Send)]
    for _ in range(100):  # bounded: the catch-up's batches
        bl = hub.backlog("S")
        if bl is None:
            break
        b, limit = bl
        evs, more = hub.backlog_read(b, limit)
        texts.extend(hub.backlog_push("S", b, evs, more))
    assert hub.backlog("S") is None
    keys = [e["key"] for t in texts
            for e in (orjson.loads(t.partition("\n")[2]).get("res")
                      or orjson.loads(t.partition("\n")[2])).get("evs", ())]
    assert keys == [str(1000 + j) for j in range(300)]
    assert len(texts) >= 9 and max(len(t.encode()) for t in texts) <= LIMIT
