"""An ``evt.sub`` catch-up pushed in batches keeps a connection's frames in revision order
and does not wait for a steady stream of other clients' publishes (found in review)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable
from typing import Any

import orjson
from websockets.asyncio.client import connect

from core.ledger import MemLedger
from core.model import Event
from core.revision import Rev, parse_rev
from core.schema import Project
from hubserver.limits import Limits
from hubserver.server import Hub
from tests.hub.conftest import recv_json, request

Z = "0001-01-01T00:00:00Z"


def new(key: str, name: str, top: str = "prod.cat") -> dict[str, Any]:
    return {"top": top, "key": key, "cmd": "new", "arg": {"name": name}}


def frame(subj: str, body: Any) -> str:
    return subj + "\n" + orjson.dumps(body).decode()


def sub_frame(tok: str, top: str) -> str:
    return frame("evt.sub#" + tok, {"rev": Z, "tops": [top]})


def evs_of(head: str, body: Any) -> list[dict[str, Any]]:
    b = body.get("res") if body is not None and "#" in head else body
    return list(b.get("evs") or []) if isinstance(b, dict) else []


async def test_second_sub_catch_up_follows_its_own_reply(prod: Project) -> None:
    """evt.sub of topic A then of topic B, both with catch-ups pushed after the reply: B's
    catch-up (events after its reply's) comes after the evt.sub#B reply, A's before it."""
    async with Hub(MemLedger(prod), limits=Limits(max_batch=10, rate=1e6, burst=10**6)) \
            as hub, connect(hub.url) as pub, connect(hub.url) as sub:
        for i in range(1, 31):
            await request(pub, "evt.pub", {"acts": [new(str(i), "c")]})
            await request(pub, "evt.pub", {"acts": [new(str(i), "p", "prod.prod")]})
        # both requests in one write: B is handled while A's catch-up is pending
        sub.protocol.send_text(sub_frame("A", "prod.cat").encode())
        sub.protocol.send_text(sub_frame("B", "prod.prod").encode())
        sub.send_data()
        frames: list[tuple[str, list[str]]] = []
        got = {"prod.cat": 0, "prod.prod": 0}
        for _ in range(200):
            if got["prod.cat"] >= 30 and got["prod.prod"] >= 30:
                break
            head, body = await recv_json(sub)
            evs = evs_of(head, body)
            for e in evs:
                got[e["top"]] += 1
            frames.append((head, sorted({e["top"] for e in evs})))
        assert got == {"prod.cat": 30, "prod.prod": 30}
        heads = [h for h, _ in frames]
        a, b = heads.index("evt.sub#A"), heads.index("evt.sub#B")
        assert a < b
        assert all("prod.prod" not in tops for _, tops in frames[:b])
        assert all("prod.cat" not in tops for _, tops in frames[b:])


class SlowCatchUp(MemLedger):
    """Catch-up batch reads (limit 30) take a while: the catch-up spans other requests."""

    def events(self, rev: Rev, tops: Iterable[str] | None = None, limit: int = 0,
               max_bytes: int = 0) -> list[Event]:
        if limit == 30:
            time.sleep(0.03)
        return super().events(rev, tops, limit, max_bytes)


async def test_publish_during_catch_up_is_answered_before_later_pushes(prod: Project) -> None:
    """A subscriber publishes record x while its catch-up is pushed; another client then
    publishes x again: the subscriber gets its publish reply before the push of the later
    revision, so applying frames in arrival order leaves the later value."""
    async with Hub(SlowCatchUp(prod), limits=Limits(max_batch=40, rate=1e6, burst=10**6)) \
            as hub, connect(hub.url) as pub, connect(hub.url) as sub:
        hub.service.BACKLOG_BATCH = 30
        for i in range(1, 301):
            await request(pub, "evt.pub", {"acts": [new(str(i), "x")]})
        await request(pub, "evt.pub", {"acts": [new("9999", "v0")]})
        commits = hub.commits
        await sub.send(sub_frame("1", "prod.cat"))
        await sub.send(frame("evt.pub#2", {"acts": [{"top": "prod.cat", "key": "9999",
                                                      "cmd": "mod", "arg": {"name": "mine"}}]}))
        for _ in range(1000):  # the subscriber's publish is committed (its reply is due)
            if hub.commits > commits:
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0)
        assert hub.service._backlogs, "the catch-up should still be pending"
        await request(pub, "evt.pub", {"acts": [{"top": "prod.cat", "key": "9999",
                                                 "cmd": "mod", "arg": {"name": "theirs"}}]})
        frames: list[tuple[str, list[str]]] = []
        for _ in range(1000):
            head, body = await recv_json(sub)
            frames.append((head, [e["arg"]["name"] for e in evs_of(head, body)
                                  if e["key"] == "9999"]))
            if "theirs" in frames[-1][1]:
                break
        heads = [h for h, _ in frames]
        assert "evt.pub#2" in heads, frames
        mine = heads.index("evt.pub#2")
        assert all("theirs" not in names for _, names in frames[:mine])
        assert [n for _, names in frames for n in names][-1] == "theirs"


class Fsync(MemLedger):
    """Commits take a while; ``entered`` is set when one starts."""

    def __init__(self, prod: Project):
        super().__init__(prod)
        self.entered = threading.Event()

    def publish_many(self, items: Any, now: Rev) -> Any:
        self.entered.set()
        time.sleep(0.004)
        return super().publish_many(items, now)


async def test_catch_up_does_not_wait_for_pipelined_publishes(prod: Project) -> None:
    """Two clients pipelining publishes keep the writer's commit chain going; a subscriber's
    catch-up read on the same thread (and its reply queued behind it) gets in between
    commits instead of waiting until both are drained."""
    n = 200
    led = Fsync(prod)
    async with Hub(led, limits=Limits(max_batch=40, rate=1e6, burst=10**6)) as hub:
        hub.service.BACKLOG_BATCH = 30
        async with connect(hub.url) as p0:
            for i in range(1, 201):
                await request(p0, "evt.pub", {"acts": [new(str(i), "x")]})
        async with connect(hub.url) as a, connect(hub.url) as b, connect(hub.url) as sub:

            def pub(tok: int, key: int) -> bytes:
                return frame(f"evt.pub#{tok}", {"acts": [new(str(key), "y", "prod.prod")]}).encode()

            for i in range(n):
                a.protocol.send_text(pub(i, 10000 + i))
            led.entered.clear()
            a.send_data()
            # out of phase: each commit finds the other client's next publish waiting
            await asyncio.to_thread(led.entered.wait, 10)
            for i in range(n):
                b.protocol.send_text(pub(i, 20000 + i))
            b.send_data()

            async def drain(ws: Any) -> None:
                for _ in range(n):
                    await recv_json(ws, 60)

            drains = [asyncio.create_task(drain(a)), asyncio.create_task(drain(b))]
            for _ in range(1000):  # the chain is running
                if hub.commits >= 205:
                    break
                await asyncio.sleep(0.002)
            start = hub.commits
            await sub.send(sub_frame("1", "prod.cat"))
            await sub.send("evt.stat#2")
            got = 0
            for _ in range(100):
                head, body = await recv_json(sub, 60)
                got += len(evs_of(head, body))
                if head == "evt.stat#2":
                    break
            during = hub.commits - start
            await asyncio.gather(*drains)
            assert got == 200
            # before the fix: every pipelined publish was committed first (about n commits)
            assert during < n // 2, during


class GatedReads(MemLedger):
    """Catch-up reads (a limit) wait for ``gate`` and record the thread they ran on."""

    def __init__(self, prod: Project):
        super().__init__(prod)
        self.gate = threading.Event()
        self.gate.set()
        self.threads: list[str] = []

    def events(self, rev: Rev, tops: Iterable[str] | None = None, limit: int = 0,
               max_bytes: int = 0) -> list[Event]:
        if limit:
            self.threads.append(threading.current_thread().name)
            self.gate.wait(5)
        return super().events(rev, tops, limit, max_bytes)


async def test_sub_reply_is_read_off_the_loop_in_its_place(prod: Project) -> None:
    """The batch an evt.sub reply holds is read on the writer thread too: while it is read
    the hub serves other clients; the subscriber's pipelined request is answered after the
    reply and the catch-up pushes, and a publish committed meanwhile comes after them, every
    event once, in order."""
    led = GatedReads(prod)
    async with Hub(led, limits=Limits(max_batch=40, rate=1e6, burst=10**6)) as hub, \
            connect(hub.url) as pub, connect(hub.url) as other, connect(hub.url) as sub:
        hub.service.BACKLOG_BATCH = 30
        for i in range(1, 101):
            await request(pub, "evt.pub", {"acts": [new(str(i), "x")]})
        led.threads.clear()
        led.gate.clear()
        sub.protocol.send_text(sub_frame("1", "prod.cat").encode())
        sub.protocol.send_text(b"evt.stat#2")
        sub.send_data()
        for _ in range(1000):  # the reply's read started (on the writer thread)
            if led.threads:
                break
            await asyncio.sleep(0.002)
        # the event loop is not held by it (before: it waited in the read, on the loop)
        assert (await request(other, "evt.stat", timeout=2))["res"]["rev"] != Z
        late = asyncio.create_task(request(pub, "evt.pub", {"acts": [new("101", "late")]}))
        await asyncio.sleep(0.05)
        led.gate.set()
        heads: list[str] = []
        keys: list[str] = []
        while "101" not in keys:
            head, body = await recv_json(sub)
            heads.append(head)
            keys += [e["key"] for e in evs_of(head, body)]
        await late
        assert keys == [str(i) for i in range(1, 102)]
        assert heads[0] == "evt.sub#1" and heads[-1] == "evt.update"
        assert heads.index("evt.stat#2") == len(heads) - 2  # after the catch-up's pushes
        assert len(heads) >= 5  # 40 in the reply, then pushes of 30
        assert set(led.threads) == {"outpost-hub-writer"}, led.threads


async def test_mon_catch_up_in_batches_before_live_notes(prod: Project) -> None:
    """evt.mon with an old rev on a big hub: the reply (the monitor's id), then the notes of
    the missed changes in several pushes read on the writer thread, every watched change
    once and in revision order, then the note of a change published during the catch-up."""
    led = GatedReads(prod)
    async with Hub(led, limits=Limits(max_batch=10, rate=1e6, burst=10**6)) as hub, \
            connect(hub.url) as pub, connect(hub.url) as mon:
        for i in range(1, 61):
            await request(pub, "evt.pub", {"acts": [new(str(i), "x"),
                                                    new(str(i), "p", "prod.prod")]})
        led.threads.clear()
        led.gate.clear()
        await mon.send(frame("evt.mon#1", {"rev": "2000-01-01T00:00:00Z", "watch": [
            {"top": "prod.cat", "keys": ["new", "7"]}]}))
        for _ in range(1000):
            if led.threads:
                break
            await asyncio.sleep(0.002)
        late = asyncio.create_task(request(pub, "evt.pub", {"acts": [
            new("61", "late"), {"top": "prod.cat", "key": "7", "cmd": "mod",
                                "arg": {"name": "y"}}]}))
        await asyncio.sleep(0.05)
        led.gate.set()
        head, body = await recv_json(mon)
        assert head == "evt.mon#1"
        mid = body["res"]
        noted: list[str] = []
        revs: list[str] = []
        pushes = 0
        while "61" not in noted:
            head, body = await recv_json(mon)
            assert head == "evt.update" and "evs" not in body
            pushes += 1
            (note,) = body["note"]
            assert note["mon"] == mid
            (w,) = note["watch"]
            assert w["top"] == "prod.cat" and len(w["keys"]) <= 10
            noted += w["keys"]
            revs.append(body["rev"])
        await late
        # every creation once, in order (a key per revision), then the live note: 61 and 7
        assert noted == [str(i) for i in range(1, 60 + 1)] + ["61", "7"]
        assert pushes >= 7  # 60 changes in batches of 10 events (5 watched), then live
        assert [parse_rev(r) for r in revs] == sorted(parse_rev(r) for r in revs)
        assert set(led.threads) == {"outpost-hub-writer"}, led.threads
