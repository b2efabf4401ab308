"""RecentEvents (the events an evt.sat reply is built from without reading the ledger) and the
hub's evt.sat replies built from it: the same as reading the ledger, every time."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.ledger import MemLedger
from core.model import Cmd, Event
from core.revision import Rev
from core.schema import Project
from hubserver.limits import Limits
from hubserver.recent import RecentEvents, arg_bytes
from hubserver.service import HubService, Out, Send
from tests.hub.conftest import Clock

Z = "0001-01-01T00:00:00Z"
TOPS = ("a.x", "a.y", "b.z")


def ledger_events(evs: list[Event], rev: Rev, tops: Iterable[str], limit: int) -> list[Event]:
    """What ``Ledger.events`` answers (MemLedger's rule: a limit never cuts a revision)."""
    wanted = set(tops)
    out: list[Event] = []
    for e in evs:
        if e.rev <= rev:
            continue
        if limit and len(out) >= limit and e.rev != out[-1].rev:
            break
        if e.top in wanted:
            out.append(e)
    return out


@st.composite
def histories(draw: st.DrawFn) -> list[list[Event]]:
    """Revisions (each 1-4 events of random topics), grouped into fan-outs of 1-3 revisions."""
    n = draw(st.integers(1, 40))
    evs: list[Event] = []
    rev, eid = 100, 0
    for _ in range(n):
        rev += draw(st.integers(1, 3))
        for _ in range(draw(st.integers(1, 4))):
            eid += 1
            evs.append(Event(eid, rev, draw(st.sampled_from(TOPS)), f"k{eid}", Cmd.NEW, None))
    groups: list[list[Event]] = []
    i = 0
    while i < len(evs):
        k = draw(st.integers(1, 3))
        revs = sorted({e.rev for e in evs[i:]})[:k]
        j = i
        while j < len(evs) and evs[j].rev <= revs[-1]:
            j += 1
        groups.append(evs[i:j])
        i = j
    return groups


@given(histories(), st.integers(1, 12), st.data())
@settings(max_examples=300)
def test_recent_events_answer_as_the_ledger_does(groups: list[list[Event]], cap: int,
                                                 data: st.DataObject) -> None:
    rec = RecentEvents(100, cap, data.draw(st.integers(100, 3000)))  # bytes: 100 an event
    seen: list[Event] = []
    for g in groups:
        rec.add(g)
        seen.extend(g)
        assert len(rec) <= max(cap, max(len(x) for x in groups)) + 4  # bounded
        assert rec.nbytes <= rec.max_bytes  # in bytes too (session 14)
        # every event after the floor is kept, whole revisions only
        kept = [e for e in seen if e.rev > rec.floor]
        assert rec.after(rec.floor, TOPS) == kept
        rev = data.draw(st.sampled_from([rec.floor, *[e.rev for e in kept], seen[-1].rev + 5]))
        tops = data.draw(st.lists(st.sampled_from(TOPS), unique=True))
        limit = data.draw(st.integers(0, 6))
        assert rec.covers(rev)
        assert rec.after(rev, tops, limit) == ledger_events(seen, rev, tops, limit)
    if rec.floor > 100:
        assert not rec.covers(rec.floor - 1)
        with pytest.raises(ValueError, match="before the kept events"):
            rec.after(rec.floor - 1, TOPS)



@given(histories(), st.integers(1, 12), st.data())
@settings(max_examples=200)
def test_tail_bytes_are_the_newest_events_bytes_as_added(groups: list[list[Event]], cap: int,
                                                         data: st.DataObject) -> None:
    """``tail_bytes`` (what an evt.sat reply's ``fit`` takes instead of encoding the events'
    values again): the :func:`arg_bytes` of the newest events when they are asked for as
    kept, ``None`` for any other list (one left out between the ends, not the newest,
    equal events that are other objects)."""
    rec = RecentEvents(100, cap, data.draw(st.integers(100, 30_000)))
    for g in groups:
        g = [replace(e, arg=data.draw(st.none() | st.fixed_dictionaries(
            {"name": st.text(max_size=30)}))) for e in g]
        rec.add(g)
        kept = rec.after(rec.floor, TOPS)
        assert rec.tail_bytes([]) is None
        if not kept:  # all trimmed by the bytes bound
            continue
        k = data.draw(st.integers(1, len(kept)))
        assert rec.tail_bytes(kept[-k:]) == sum(arg_bytes(kept[-k:]))
        assert rec.tail_bytes(kept) == rec.nbytes
        if k > 2:
            some = [kept[-k], *kept[-k + 2:]]  # one left out between the ends
            assert rec.tail_bytes(some) is None
        if len(kept) > 1:
            assert rec.tail_bytes(kept[:-1]) is None  # not the newest
            assert rec.tail_bytes([replace(e) for e in kept]) is None  # other objects


def test_arg_bytes_of_a_batch_count_each_value_as_one_by_one() -> None:
    """The batch path (every event with a value, encoded in C) counts as the per-event one,
    a value that does not encode (counted as its text) and ``None`` (100) included."""
    def ev(i: int, arg: Any) -> Event:
        return Event(i, 100 + i, "a.x", f"k{i}", Cmd.NEW, arg)

    plain = [ev(i, {"name": "n" * i, "x": i / 3}) for i in range(50)]
    assert arg_bytes(plain) == [100 + len(orjson.dumps(e.arg)) for e in plain]
    odd = [*plain[:3], ev(3, {"bad": {1, 2}}), ev(4, None), *plain[5:8]]
    assert arg_bytes(odd) == [sum(arg_bytes([e])) for e in odd]
    assert arg_bytes(odd)[3] == 100 + len(str({"bad": {1, 2}}).encode())
    assert arg_bytes(odd)[4] == 100

# -- the hub's evt.sat replies -----------------------------------------------------------------


class CountingLedger(MemLedger):
    """A MemLedger that counts event reads (an evt.sat reply should need none)."""

    reads = 0

    def events(self, rev: Rev, tops: Iterable[str] | None = None, limit: int = 0,
               max_bytes: int = 0) -> list[Event]:
        self.reads += 1
        return super().events(rev, tops, limit, max_bytes)


def body(out: Out) -> Any:
    assert isinstance(out, Send), out
    return orjson.loads(out.text.partition("\n")[2])


def frame(subj: str, obj: Any) -> str:
    return subj + "\n" + orjson.dumps(obj).decode()


def sat(rev: str, *keys: str, lim: int = 0, uid: str = "") -> str:
    trans = [{"uid": f"{uid}{k}", "acts": [{"top": "prod.cat", "key": k, "cmd": "new",
                                             "arg": {"name": k}}]} for k in keys]
    return frame("evt.sat#1", {"rev": rev, "tops": ["prod.cat"], "trans": trans,
                               "audits": True, **({"lim": lim} if lim else {})})


def test_replay_replies_come_from_memory_and_equal_a_ledger_read(prod: Project,
                                                                  clock: Clock) -> None:
    led = CountingLedger(prod)
    hub = HubService(led, clock)
    hub.connect("S", "sat")
    hub.connect("O", "other")
    (r,) = hub.handle_sync("S", sat(Z))
    rev = body(r)["res"]["rev"]
    replies = []
    for n in range(5):
        # another writer publishes between the batches: the next reply carries it too
        hub.handle_sync("O", frame("evt.pub#9", {"acts": [
            {"top": "prod.cat", "key": str(900 + n), "cmd": "new", "arg": {"name": "o"}}]}))
        led.reads = 0
        outs = hub.handle_sync("S", sat(rev, *[str(10 * n + i + 1) for i in range(3)]))
        (r,) = [o for o in outs if isinstance(o, Send)]
        assert led.reads == 0  # built from what was just fanned out
        res = body(r)["res"]
        replies.append(res)
        rev = res["rev"]
        mine = [str(10 * n + i + 1) for i in range(3)]
        assert [e["key"] for e in res["evs"]] == [str(900 + n), *mine]
        assert len(res["acks"]) == 3 and len(res["audits"]) == 4
    # a hub started on the same ledger (nothing in memory) reads the same from the ledger
    fresh = HubService(led, clock)
    fresh.connect("S", "sat")
    (r,) = fresh.handle_sync("S", sat(Z, lim=1000))
    assert led.reads >= 1
    assert body(r)["res"]["evs"] == [e for res in replies for e in res["evs"]]
    assert body(r)["res"]["audits"] == [a for res in replies for a in res["audits"]]


def test_sat_from_before_the_kept_events_reads_the_ledger_in_batches(prod: Project,
                                                                     clock: Clock) -> None:
    led = CountingLedger(prod)
    hub = HubService(led, clock, Limits(max_batch=4))
    hub.RECENT_EVENTS = 6  # type: ignore[misc]
    hub._recent = RecentEvents(hub.rev, 6)
    hub.connect("S", "sat")
    for i in range(20):
        hub.handle_sync("S", sat(Z, str(100 + i), uid=f"u{i}"))
    assert hub._recent.floor > 0
    hub.connect("N", "new")
    keys: list[str] = []
    rev, more = Z, True
    while more:
        led.reads = 0
        (r,) = hub.handle_sync("N", sat(rev))
        res = body(r)["res"]
        keys += [e["key"] for e in res["evs"]]
        rev, more = res["rev"], res.get("more", False)
    assert keys == [str(100 + i) for i in range(20)]  # nothing lost, nothing doubled
    assert led.reads == 0  # the last batches came from memory
