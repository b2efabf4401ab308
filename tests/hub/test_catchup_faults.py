"""Faults during an ``evt.sub``/``evt.mon`` catch-up read by the connection's sender (found in
review): an unexpected error closes with 1011 instead of silencing the connection, and a
catch-up whose reply is an error leaves nothing of its topics (notes of its monitor) to push
after that reply."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from core.errors import StorageError
from core.ledger import MemLedger
from core.model import Event
from core.revision import Rev, parse_rev
from core.schema import Project
from hubserver.limits import CLOSE_INTERNAL, Limits
from hubserver.server import Hub
from tests.hub.conftest import recv_json, request
from tests.hub.test_catchup_order import Z, evs_of, frame, new

OLD = "2000-01-01T00:00:00Z"


class Corrupt(MemLedger):
    """Bounded reads (the sender's catch-up reads) fail as a corrupt row would."""

    fail = False

    def events(self, rev: Rev, tops: Iterable[str] | None = None, limit: int = 0,
               max_bytes: int = 0) -> list[Event]:
        if self.fail and limit:
            raise ValueError("corrupt row")
        return super().events(rev, tops, limit, max_bytes)


@pytest.mark.parametrize("req", [
    ("evt.sub", {"rev": Z, "tops": ["prod.cat"]}),
    ("evt.mon", {"rev": OLD, "watch": [{"top": "prod.cat", "keys": ["new"]}]}),
])
async def test_unexpected_error_reading_a_catch_up_closes_1011(
        prod: Project, req: tuple[str, Any]) -> None:
    led = Corrupt(prod)
    async with Hub(led, limits=Limits(max_batch=10, rate=1e6, burst=10**6)) as hub, \
            connect(hub.url) as pub, connect(hub.url) as sub:
        for i in range(1, 21):
            await request(pub, "evt.pub", {"acts": [new(str(i), "c")]})
        led.fail = True
        await sub.send(frame(req[0] + "#1", req[1]))
        await sub.send("evt.stat#2")
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await recv_json(sub)
        assert info.value.rcvd is not None and info.value.rcvd.code == CLOSE_INTERNAL
        # the hub goes on serving the others
        assert (await request(pub, "evt.stat"))["res"]["rev"] != Z


class Gated(MemLedger):
    """Bounded reads (the sender's catch-up reads) wait for the test, one ticket each; those
    of ``prod.prod`` then fail."""

    fail = "prod.prod"

    def __init__(self, project: Project):
        super().__init__(project)
        self.gated = False
        self.started = 0
        self.allowed = 0
        self.cond = threading.Condition()

    def events(self, rev: Rev, tops: Iterable[str] | None = None, limit: int = 0,
               max_bytes: int = 0) -> list[Event]:
        tops = None if tops is None else tuple(tops)
        if limit and self.gated:
            with self.cond:
                n = self.started
                self.started += 1
                assert self.cond.wait_for(lambda: self.allowed > n, timeout=10)
            if tops and self.fail in tops:
                raise StorageError("disk gone")
        return super().events(rev, tops, limit, max_bytes)

    def allow(self, k: int = 1) -> None:
        with self.cond:
            self.allowed += k
            self.cond.notify_all()


async def publish_cats(pub: Any, n: int = 25) -> str:
    """Publish prod.cat 1..n (more than one catch-up batch at max_batch=10); the hub's rev."""
    for i in range(1, n + 1):
        await request(pub, "evt.pub", {"acts": [new(str(i), "c")]})
    rev: str = (await request(pub, "evt.stat"))["res"]["rev"]
    return rev


async def until(cond: Any) -> None:
    for _ in range(2000):
        if cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("never happened")


@pytest.mark.parametrize("second", [
    ("evt.sub#T", {"rev": Z, "tops": ["prod.prod"]}),
    ("evt.mon#T", {"rev": OLD, "watch": [{"top": "prod.prod", "keys": ["new"]}]}),
])
async def test_failed_catch_up_leaves_nothing_of_it_in_sealed_pushes(
        prod: Project, second: tuple[str, Any]) -> None:
    """A catch-up's first read fails after a live event of its topic (note of its monitor)
    was sealed into a push queued behind it (a later reply sealed it): the error reply is
    the last the client hears of it (the push would move its rev past the events it never
    got, and a retry from that rev would miss them)."""
    led = Gated(prod)
    async with Hub(led, limits=Limits(max_batch=10, rate=1e6, burst=10**6)) as hub, \
            connect(hub.url) as pub, connect(hub.url) as sub:
        for i in range(1, 6):
            await request(pub, "evt.pub", {"acts": [new(str(i), "c"),
                                                    new(str(i), "p", "prod.prod")]})
        conn = max(hub._peers)
        led.gated = True
        # A's catch-up (one read) holds the sender; T's is queued behind it
        sub.protocol.send_text(frame("evt.sub#A", {"rev": Z, "tops": ["prod.cat"]}).encode())
        sub.protocol.send_text(frame(*second).encode())
        sub.send_data()
        await until(lambda: led.started >= 1)
        late = asyncio.create_task(request(pub, "evt.pub", {"acts": [new("99", "p",
                                                                         "prod.prod")]}))
        await until(lambda: hub._busy)  # its commit waits behind A's read on the writer
        led.allow()
        await late  # fanned out to T's subscription (monitor) while T's catch-up waits
        await until(lambda: led.started >= 2)  # T's read
        assert hub.service.pending(conn)
        await sub.send("evt.stat#S")  # its reply seals the pending push behind T's catch-up
        await until(lambda: not hub.service.pending(conn))
        led.allow(10)
        frames: list[tuple[str, Any]] = []
        while not frames or frames[-1][0] != "evt.stat#S":
            frames.append(await recv_json(sub))
    heads = [h for h, _ in frames]
    assert heads[:2] == ["evt.sub#A", "evt.sub#T" if "sub" in second[0] else "evt.mon#T"]
    err = frames[1][1]
    assert err["code"] == "read" and "could not read its ledger" in err["err"]
    assert "disk gone" not in err["err"]  # the cause is in the hub's log
    for head, body in frames:
        assert all(e["top"] == "prod.cat" for e in evs_of(head, body)), head
        assert not (body or {}).get("note"), head


async def test_mon_catch_up_notes_claim_no_rev_past_a_paused_sat_reply(prod: Project) -> None:
    """A satellite in an evt.sat catch-up with ``more`` (its pushes paused) asks evt.mon with
    a rev: the notes pushed claim the rev of its last reply, as live notes then do, not the
    hub's (which would move its rev past events it has not got)."""
    async with Hub(MemLedger(prod), limits=Limits(max_batch=10, rate=1e6, burst=10**6)) \
            as hub, connect(hub.url) as pub, connect(hub.url) as sat:
        for i in range(1, 21):
            await request(pub, "evt.pub", {"acts": [new(str(i), "c")]})
        hub_rev = (await request(pub, "evt.stat"))["res"]["rev"]
        res = (await request(sat, "evt.sat", {"rev": Z, "trans": [], "tops": ["prod.cat"],
                                               "lim": 5}))["res"]
        assert res["more"] and parse_rev(res["rev"]) < parse_rev(hub_rev)  # as revisions
        await sat.send(frame("evt.mon#M", {"rev": OLD,
                                           "watch": [{"top": "prod.cat", "keys": ["new"]}]}))
        await sat.send("evt.stat#S")
        frames: list[tuple[str, Any]] = []
        while not frames or frames[-1][0] != "evt.stat#S":
            frames.append(await recv_json(sat))
    pushes = [b for h, b in frames if h == "evt.update"]
    assert [h for h, _ in frames] == ["evt.mon#M", "evt.update", "evt.update", "evt.stat#S"]
    assert sum(len(w["keys"]) for b in pushes for n in b["note"] for w in n["watch"]) == 20
    assert all(b["rev"] == res["rev"] for b in pushes)


async def test_push_pending_before_a_catch_up_goes_before_it(prod: Project) -> None:
    """Events fanned out before an evt.sub with a catch-up are sealed into a push of their
    own ahead of it: a push taken later (its flush was queued while the sender was busy)
    would also carry events of the new topic fanned out after the request, ahead of its
    reply's older ones."""
    led = Gated(prod)
    led.fail = "none"
    async with Hub(led, limits=Limits(max_batch=10, rate=1e6, burst=10**6)) as hub, \
            connect(hub.url) as pub, connect(hub.url) as sub:
        await publish_cats(pub)
        for i in range(1, 6):
            await request(pub, "evt.pub", {"acts": [new(str(i), "p", "prod.prod")]})
        led.gated = True
        # A's catch-up (25 events, several reads) keeps the sender busy
        await sub.send(frame("evt.sub#A", {"rev": Z, "tops": ["prod.cat"]}))
        await until(lambda: led.started >= 1)
        x = asyncio.create_task(request(pub, "evt.pub", {"acts": [new("98", "c")]}))
        await until(lambda: hub._busy)  # X's commit waits behind A's first read
        led.allow(2)  # the reply's batch and whether more follow: one job on the writer
        await x  # X is pending for sub (a flush is queued: the sender is busy)
        await until(lambda: led.started >= 3)  # A's first push batch
        await sub.send(frame("evt.sub#T", {"rev": Z, "tops": ["prod.prod"]}))
        await until(lambda: "prod.prod" in hub.service.subs.get(max(hub._peers)).tops)
        y = asyncio.create_task(request(pub, "evt.pub", {"acts": [new("99", "p",
                                                                      "prod.prod")]}))
        await until(lambda: hub._busy)
        led.allow()
        await y  # Y (after T's request) is pending too
        led.allow(100)
        frames: list[tuple[str, list[str]]] = []
        prods = 0
        while prods < 6:
            head, body = await recv_json(sub)
            evs = evs_of(head, body)
            prods += sum(e["top"] == "prod.prod" for e in evs)
            frames.append((head, [e["top"] + ":" + e["key"] for e in evs]))
    heads = [h for h, _ in frames]
    t = heads.index("evt.sub#T")
    assert not any(k.startswith("prod.prod") for _, ks in frames[:t] for k in ks), frames
    assert any("prod.cat:98" in ks for _, ks in frames[:t]), frames
    assert frames[-1][1] == ["prod.prod:99"], frames


@pytest.mark.parametrize("kind", ["sub", "mon"])
async def test_an_event_fanned_out_before_unsub_is_still_sent(prod: Project, kind: str) -> None:
    """An event of topic T (a note of monitor M) fanned out but not sent yet when evt.unsub T
    (evt.unmon M) arrives is still sent, ahead of that reply (as daql): taking it out of a
    push whose rev speaks for every topic could lose it for good (review). An evt.sub of T
    (evt.mon) from an older rev right after may bring it again: twice, never lost."""
    led = Gated(prod)
    led.fail = "none"
    async with Hub(led, limits=Limits(max_batch=10, rate=1e6, burst=10**6)) as hub, \
            connect(hub.url) as pub, connect(hub.url) as sub:
        rev = await publish_cats(pub)
        watch = [{"top": "prod.prod", "keys": ["new"]}]
        if kind == "sub":
            assert (await request(sub, "evt.sub", {"rev": rev, "tops": ["prod.prod"]})
                    )["res"] is None
        else:
            mon = (await request(sub, "evt.mon", {"rev": rev, "watch": watch}))["res"]
        led.gated = True
        # A's catch-up (several reads) keeps the sender busy
        await sub.send(frame("evt.sub#A", {"rev": Z, "tops": ["prod.cat"]}))
        await until(lambda: led.started >= 1)
        e = asyncio.create_task(request(pub, "evt.pub", {"acts": [new("7", "p",
                                                                      "prod.prod")]}))
        await until(lambda: hub._busy)
        led.allow(2)
        await e  # pending for sub: its flush waits behind A's catch-up
        await until(lambda: led.started >= 3)
        assert hub.service.pending(max(hub._peers))
        if kind == "sub":
            sub.protocol.send_text(frame("evt.unsub#U", {"rev": Z, "tops": ["prod.prod"]})
                                   .encode())
            sub.protocol.send_text(frame("evt.sub#T", {"rev": rev, "tops": ["prod.prod"]})
                                   .encode())
        else:
            sub.protocol.send_text(frame("evt.unmon#U", {"mon": mon}).encode())
            sub.protocol.send_text(frame("evt.mon#T", {"rev": rev, "watch": watch}).encode())
        sub.protocol.send_text(b"evt.stat#S")
        sub.send_data()
        conn = max(hub._peers)
        await until(lambda: len(hub.service._backlogs.get(conn, ())) == 2)  # A's and T's
        led.allow(100)
        frames: list[tuple[str, Any]] = []
        while not frames or frames[-1][0] != "evt.stat#S":
            frames.append(await recv_json(sub))
    heads = [h for h, _ in frames]
    assert heads.index("evt.unsub#U" if kind == "sub" else "evt.unmon#U") \
        < heads.index("evt.sub#T" if kind == "sub" else "evt.mon#T")
    sent = [e["key"] for h, b in frames for e in evs_of(h, b) if e["top"] == "prod.prod"]
    noted = [k for _, b in frames if isinstance(b, dict) and "note" in b
             for n in b["note"] for w in n["watch"] if w["top"] == "prod.prod"
             for k in w["keys"]]
    got = sent if kind == "sub" else noted
    assert got and set(got) == {"7"}, frames
    first = next(i for i, (h, b) in enumerate(frames)
                 if "7" in [e["key"] for e in evs_of(h, b) if e["top"] == "prod.prod"]
                 or (isinstance(b, dict) and any(k == "7" for n in b.get("note") or ()
                                                 for w in n["watch"] for k in w["keys"])))
    assert first < heads.index("evt.unsub#U" if kind == "sub" else "evt.unmon#U"), frames


async def test_a_push_emptied_by_a_failed_catch_up_carries_no_later_event_ahead_of_a_reply(
        prod: Project) -> None:
    """A failed catch-up took the only events out of the pending push whose flush is queued
    behind another catch-up; a later evt.sub's reply must seal that emptied push (void its
    flush), else a live event of the new topic, fanned out into it, rides the old flush
    ahead of its own evt.sub reply and catch-up (review)."""
    led = Gated(prod)  # reads of prod.prod fail
    async with Hub(led, limits=Limits(max_batch=10, rate=1e6, burst=10**6)) as hub, \
            connect(hub.url) as pub, connect(hub.url) as sub:
        for i in range(1, 6):
            await request(pub, "evt.pub", {"acts": [new(str(i), "c")]})
        await request(pub, "evt.pub", {"acts": [new("1", "p", "prod.prod")]})
        for i in range(1, 26):
            await request(pub, "evt.pub", {"acts": [new(str(i), "l", "prod.label")]})
        conn = max(hub._peers)
        led.gated = True
        # A's catch-up (one read) holds the sender; then T's (its read fails) and B's
        # (several reads)
        sub.protocol.send_text(frame("evt.sub#A", {"rev": Z, "tops": ["prod.cat"]}).encode())
        sub.protocol.send_text(frame("evt.sub#T", {"rev": Z, "tops": ["prod.prod"]}).encode())
        sub.protocol.send_text(frame("evt.mon#B", {"rev": OLD, "watch": [
            {"top": "prod.label", "keys": ["new"]}]}).encode())
        sub.send_data()
        await until(lambda: led.started >= 1)
        late = asyncio.create_task(request(pub, "evt.pub", {"acts": [new("99", "p",
                                                                         "prod.prod")]}))
        await until(lambda: hub._busy)
        led.allow()  # A's read; then the commit of prod.prod:99, fanned out to T
        await late  # pending, its flush queued behind B's catch-up
        await until(lambda: led.started >= 2)
        assert hub.service.pending(conn)
        led.allow()  # T's read fails: 99 leaves the pending push, which stays open
        await until(lambda: led.started >= 3)  # B's first read
        assert not hub.service.pending(conn)
        await sub.send(frame("evt.sub#X", {"rev": Z, "tops": ["prod.label"]}))
        await until(lambda: len(hub.service._backlogs.get(conn, ())) == 2)  # B's and X's
        y = asyncio.create_task(request(pub, "evt.pub", {"acts": [new("90", "l",
                                                                      "prod.label")]}))
        assert hub._writer is not None
        await until(lambda: hub._writer._q.qsize() > 0)  # its commit waits behind B's read
        led.allow(2)  # B's first read (its batch and the look for more); then the commit
        # of label 90, fanned out to X: the sender is held by B's next read meanwhile
        await y
        led.allow(100)
        frames: list[tuple[str, list[str]]] = []
        while "evt.sub#X" not in [h for h, _ in frames] \
                or not any("prod.label:90" in ks for _, ks in frames):
            h, body = await recv_json(sub)
            frames.append((h, [e["top"] + ":" + e["key"] for e in evs_of(h, body)]))
    heads = [h for h, _ in frames]
    x = heads.index("evt.sub#X")
    assert not any("prod.label:90" in ks for _, ks in frames[:x]), frames


async def test_unsub_takes_no_event_out_of_a_push_holding_other_topics(prod: Project,
                                                                       ) -> None:
    """One transaction makes prod.prod 7 and prod.cat 98 at the same rev; the client
    unsubscribes prod.prod while that push waits behind a catch-up. The push goes out before
    the unsub reply with both events: without 7, its rev would claim 7 for a client that
    keeps one rev for all topics, and a re-subscription from it would never bring 7
    (review)."""
    led = Gated(prod)
    led.fail = "none"
    async with Hub(led, limits=Limits(max_batch=10, rate=1e6, burst=10**6)) as hub, \
            connect(hub.url) as pub, connect(hub.url) as sub:
        rev = await publish_cats(pub)
        assert (await request(sub, "evt.sub", {"rev": rev, "tops": ["prod.prod"]}))["res"] \
            is None
        led.gated = True
        await sub.send(frame("evt.sub#A", {"rev": Z, "tops": ["prod.cat"]}))
        await until(lambda: led.started >= 1)
        e = asyncio.create_task(request(pub, "evt.pub", {"acts": [
            new("7", "p", "prod.prod"), new("98", "c")]}))
        await until(lambda: hub._busy)
        led.allow(2)
        await e
        await until(lambda: led.started >= 3)
        conn = max(hub._peers)
        assert hub.service.pending(conn)
        await sub.send(frame("evt.unsub#U", {"tops": ["prod.prod"]}))
        await until(lambda: "prod.prod" not in hub.service.subs.get(conn).tops)
        led.allow(100)
        frames: list[tuple[str, Any]] = []
        while not frames or frames[-1][0] != "evt.unsub#U":
            frames.append(await recv_json(sub))
        last = [b for h, b in frames if h == "evt.update"][-1]
        got = [e["key"] for h, b in frames for e in evs_of(h, b) if e["top"] == "prod.prod"]
        again = (await request(sub, "evt.sub", {"rev": last["rev"], "tops": ["prod.prod"]}
                               ))["res"]
    assert "7" in got or (again and any(e["key"] == "7" for e in again["evs"])), frames


async def test_live_notes_claim_no_rev_past_a_paused_sat_reply(prod: Project) -> None:
    """Live notes to a satellite paused in an evt.sat catch-up with ``more`` claim the rev of
    its last reply, not the fan-out's."""
    async with Hub(MemLedger(prod), limits=Limits(max_batch=10, rate=1e6, burst=10**6)) \
            as hub, connect(hub.url) as pub, connect(hub.url) as sat:
        for i in range(1, 21):
            await request(pub, "evt.pub", {"acts": [new(str(i), "c")]})
        res = (await request(sat, "evt.sat", {"rev": Z, "trans": [], "tops": ["prod.cat"],
                                               "lim": 5}))["res"]
        assert res["more"]
        await request(sat, "evt.mon", {"watch": [{"top": "prod.cat", "keys": ["new"]}]})
        await request(pub, "evt.pub", {"acts": [new("21", "c")]})
        head, body = await recv_json(sat)
    assert head == "evt.update" and body["note"][0]["watch"][0]["keys"] == ["21"]
    assert body["rev"] == res["rev"]
