"""``evt.hist`` paged and read off the event loop; reply frames bounded in bytes (session 15
security review, HIGH: one reader's ``evt.hist`` of a record with 61 changes of 700 KB made a
42 MB reply built on the loop, and asking again without reading grew the hub by gigabytes)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import connect

from core.ledger import MemLedger
from core.ledger.protocols import HistoryEntry
from core.ledger.sql import SqlLedger, open_ledger
from core.model import Action, Cmd, Trans
from core.revision import Rev
from core.schema import Project
from hubserver.limits import Limits
from hubserver.server import Hub
from tests.hub.conftest import request

BIG = 60_000  # bytes of one value
CHANGES = 20


def fill(led: SqlLedger | MemLedger) -> None:
    """Record 7 of prod.cat: a new and CHANGES - 1 changes of BIG bytes, one per revision;
    then a revision of three changes of record 7 (never cut)."""
    led.publish(Trans((Action("prod.cat", "7", Cmd.NEW, {"name": "a" * BIG}),)), "ann")
    for i in range(1, CHANGES):
        led.publish(Trans((Action("prod.cat", "7", Cmd.MOD, {"name": chr(97 + i % 26) * BIG}),)),
                    "bob")
    led.publish(Trans(tuple(Action("prod.cat", "7", Cmd.MOD, {"name": f"x{j}"})
                            for j in range(3))), "ann")


def pages(led: SqlLedger | MemLedger, limit: int, max_bytes: int) -> list[list[HistoryEntry]]:
    out: list[list[HistoryEntry]] = []
    after: Rev = 0
    for _ in range(100):  # bounded
        page, more = led.history_page("prod.cat", "7", after, limit, max_bytes)
        out.append(page)
        if not more:
            return out
        after = page[-1].rev
    raise AssertionError("history_page never ended")


def test_history_page_cuts_by_count_and_bytes_never_a_revision(prod: Project,
                                                                tmp_path: Path) -> None:
    for led in (open_ledger(tmp_path / "hub.db", prod), MemLedger(prod)):
        try:
            fill(led)
            whole = led.history("prod.cat", "7")
            assert len(whole) == CHANGES + 3
            for limit, max_bytes in ((0, 3 * BIG), (4, 0), (2, 0), (5, 10 * BIG), (0, 1)):
                got = pages(led, limit, max_bytes)
                assert [h for p in got for h in p] == whole, (limit, max_bytes)
                for p in got:
                    assert p, "an empty page"
                    # a page holds whole revisions: the next one starts with a new revision
                    if limit:
                        assert len(p) <= limit or len({h.rev for h in p}) == 1
                    if max_bytes > 1:
                        assert sum(len(orjson.dumps(h.arg)) for h in p) <= max_bytes
                # the last revision's three changes stay together
                assert [h.arg for h in got[-1][-3:]] == [{"name": f"x{j}"} for j in range(3)]
            assert led.history_page("prod.cat", "7", whole[-1].rev) == ([], False)
            assert led.history_page("prod.cat", "nope") == ([], False)
        finally:
            if isinstance(led, SqlLedger):
                led.close()


class Reads(SqlLedger):
    """A real SQLite ledger that records the thread of each history read."""

    threads: list[str]

    def history_page(self, *a: Any, **kw: Any) -> tuple[list[HistoryEntry], bool]:
        self.threads.append(threading.current_thread().name)
        return super().history_page(*a, **kw)


async def test_hist_reply_is_paged_under_max_message_off_the_loop(prod: Project,
                                                                  tmp_path: Path) -> None:
    led = Reads(f"sqlite:///{tmp_path / 'hub.db'}", prod)
    led.threads = []
    fill(led)
    whole = led.history("prod.cat", "7")
    limits = Limits(max_message=256 * 1024)
    async with Hub(led, port=0, limits=limits) as hub, \
            connect(hub.url, max_size=None) as a:
        got: list[dict[str, Any]] = []
        after: dict[str, Any] = {}
        sizes = []
        for _ in range(50):  # bounded
            await a.send("evt.hist#1\n" + orjson.dumps(
                {"top": "prod.cat", "key": "7", **after}).decode())
            text = await a.recv()
            assert isinstance(text, str)
            sizes.append(len(text.encode()))
            body = orjson.loads(text.partition("\n")[2])
            got += body["res"]
            if not body.get("more"):
                break
            after = {"after": body["res"][-1]["rev"]}
        assert max(sizes) <= limits.max_message, sizes
        assert len(sizes) > 1
        assert [(h["usr"], h["arg"]) for h in got] == [(h.usr, h.arg) for h in whole]
        # "lim" asks for fewer
        r = await request(a, "evt.hist", {"top": "prod.cat", "key": "7", "lim": 2})
        assert len(r["res"]) == 2 and r["more"] is True
        bad = await request(a, "evt.hist", {"top": "prod.cat", "key": "7", "after": "soon"})
        assert "after: expected a revision" in bad["err"]
    assert led.threads and threading.main_thread().name not in led.threads
    led.close()


async def test_reader_asking_history_without_reading_holds_one_page(prod: Project,
                                                                   tmp_path: Path) -> None:
    led = open_ledger(tmp_path / "hub.db", prod)
    fill(led)
    limits = Limits(max_message=256 * 1024, rate=1e6, burst=1_000_000)
    async with Hub(led, port=0, limits=limits) as hub, \
            connect(hub.url, max_queue=1, max_size=None) as slow, connect(hub.url) as other:
        for i in range(300):  # bounded: 300 whole histories (360 MB) before session 15
            await slow.send(f"evt.hist#{i}\n" + '{"top": "prod.cat", "key": "7"}')
        queued = []
        for _ in range(40):  # bounded: the hub handles what it reads meanwhile
            await asyncio.sleep(0.05)
            queued += [sum(len(x) for x in list(p.queue._queue) if isinstance(x, str))  # type: ignore[attr-defined]
                       for p in hub._peers.values()]
        # one page at a time waits for the slow reader; its other requests wait unread
        assert max(queued) <= limits.max_message, max(queued)
        assert hub.service.connections == 2
        assert "rev" in (await request(other, "evt.stat"))["res"]
        slow.transport.abort()  # not a close handshake it would not read the answer of
    led.close()


async def test_replies_queued_are_bounded_in_bytes(prod: Project) -> None:
    """A client that never reads is closed once its queued replies pass send_queue_bytes,
    whatever their number (session 15: 1,024 frames of any size)."""
    limits = Limits(send_queue=1_000_000, send_queue_bytes=200_000, rate=1e6, burst=1_000_000)
    async with Hub(MemLedger(prod), port=0, limits=limits) as hub, \
            connect(hub.url, max_queue=1, close_timeout=0.5) as slow, connect(hub.url) as b:
        for i in range(20_000):  # bounded: ~20 MB of replies if nothing stopped it
            await slow.send(f"dom.project#{i}")
            if i % 100 == 0:
                await asyncio.sleep(0)
            if hub.service.connections < 2:
                break
        for _ in range(100):  # bounded
            if hub.service.connections < 2:
                break
            await asyncio.sleep(0.05)
        assert hub.service.connections == 1  # the one that does not read was dropped
        assert "rev" in (await request(b, "evt.stat"))["res"]


async def test_sat_replies_queued_as_bytes_count_toward_the_byte_bound(prod: Project) -> None:
    """``evt.sat`` replies made from the recent events are queued as orjson's bytes
    (session 15, perfhub): they count toward ``send_queue_bytes`` as text replies do (a
    client that never reads its ``evt.sat`` replies is closed; the merge had counted only
    ``str`` frames)."""
    limits = Limits(send_queue=1_000_000, send_queue_bytes=200_000, rate=1e6, burst=1_000_000)
    async with Hub(MemLedger(prod), port=0, limits=limits) as hub, \
            connect(hub.url, max_queue=1, close_timeout=0.5) as slow, connect(hub.url) as b:
        start = (await request(b, "evt.stat"))["res"]["rev"]
        for k in range(4):  # 200 events the hub keeps in memory: replies made on the loop
            acts = [{"top": "prod.cat", "key": str(k * 50 + i), "cmd": "new",
                     "arg": {"name": "n" * 200}} for i in range(50)]
            assert "res" in await request(b, "evt.pub", {"acts": acts})
        body = orjson.dumps({"rev": start, "tops": ["prod.cat"], "trans": []}).decode()
        for i in range(5_000):  # bounded: ~250 MB of replies if nothing stopped it
            await slow.send(f"evt.sat#{i}\n{body}")
            if i % 20 == 0:
                await asyncio.sleep(0)
            if hub.service.connections < 2:
                break
        for _ in range(100):  # bounded
            if hub.service.connections < 2:
                break
            await asyncio.sleep(0.05)
        assert hub.service.connections == 1  # the one that does not read was dropped
        assert "rev" in (await request(b, "evt.stat"))["res"]
