"""The hub over real websockets on 127.0.0.1: services, auth, limits, group commit."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.errors import StorageError
from core.ledger import MemLedger
from core.ledger.sql import open_ledger
from core.model import Audit, Event
from core.revision import Rev
from core.schema import Project, parse_project
from hubserver.auth import Users
from hubserver.limits import Limits
from hubserver.server import Hub
from tests.hub.conftest import recv_json, request

Z = "0001-01-01T00:00:00Z"


def new(key: str, name: str, top: str = "prod.cat") -> dict[str, Any]:
    return {"top": top, "key": key, "cmd": "new", "arg": {"name": name}}


async def no_frame(ws: Any, wait: float = 0.2) -> bool:
    try:
        await asyncio.wait_for(ws.recv(), wait)
    except TimeoutError:
        return True
    return False


async def test_two_subscribers_see_each_other_not_themselves(hub: Hub) -> None:
    async with connect(hub.url) as a, connect(hub.url) as b:
        for ws in (a, b):
            assert await request(ws, "evt.sub", {"rev": Z, "tops": ["prod.cat"]}) == {"res": None}
        ra = await request(a, "evt.pub", {"acts": [new("1", "from a")]})
        head, push = await recv_json(b)
        assert head == "evt.update" and push["evs"] == ra["res"]["evs"]
        rb = await request(b, "evt.pub", {"acts": [new("2", "from b")]})
        head, push = await recv_json(a)
        assert head == "evt.update" and push["evs"] == rb["res"]["evs"]
        assert await no_frame(a) and await no_frame(b)


async def test_every_service_answers(hub: Hub) -> None:
    async with connect(hub.url) as a, connect(hub.url) as b:
        st = await request(a, "evt.stat")
        assert st["res"]["rev"] == Z and st["res"]["mig"] == hub.ledger.project.version
        mon = (await request(b, "evt.mon", {"rev": Z, "watch": [
            {"top": "prod.prod", "keys": ["new"]}]}))["res"]
        assert mon == 1
        pub = await request(a, "evt.pub", {"acts": [new("25", "Y", "prod.prod")]})
        head, note = await recv_json(b)
        assert head == "evt.update"
        assert note == {"rev": pub["res"]["rev"], "note": [
            {"mon": mon, "watch": [{"top": "prod.prod", "keys": ["25"]}]}]}
        assert (await request(b, "evt.unmon", {"mon": mon})) == {"res": True}
        assert (await request(b, "evt.sub", {"rev": Z, "tops": ["prod.prod"]}))["res"]["evs"]
        assert (await request(b, "evt.unsub", {"tops": ["prod.prod"]})) == {"res": True}
        hist = await request(a, "evt.hist", {"top": "prod.prod", "key": "25"})
        assert hist["res"][0]["usr"] == "anonymous" and hist["res"][0]["cmd"] == "new"
        proj = await request(a, "dom.project")
        assert set(proj["res"]["prod"]) == {"cat", "prod", "label"}
        sat = await request(b, "evt.sat", {"rev": Z, "tops": ["prod.prod"], "trans": [
            {"uid": "u-1", "acts": [new("26", "Z", "prod.prod")]}]})
        assert [x["uid"] for x in sat["res"]["acks"]] == ["u-1"]
        assert [e["key"] for e in sat["res"]["evs"]] == ["25", "26"]
        err = await request(a, "evt.what")
        assert err["err"].startswith("unknown subject 'evt.what'")


async def test_internal_subject_and_no_subject_close(hub: Hub) -> None:
    for bad in ("_ctl#1\n{}", "\n{}", "#3"):
        async with connect(hub.url) as ws:
            await ws.send(bad)
            with pytest.raises(ConnectionClosed) as ei:
                await asyncio.wait_for(ws.recv(), 5)
            assert ei.value.rcvd is not None and ei.value.rcvd.code == 1002


async def test_malformed_bodies_get_error_replies(hub: Hub) -> None:
    async with connect(hub.url) as ws:
        for subj, raw in (("evt.pub", "not json"), ("evt.sub", "[1,2]"),
                          ("evt.sat", '{"rev": 5}'), ("evt.mon", '{"watch": "x"}'),
                          ("evt.unmon", '{"mon": "x"}'), ("evt.hist", "{}")):
            await ws.send(f"{subj}#9\n{raw}")
            head, body = await recv_json(ws)
            assert head == f"{subj}#9" and isinstance(body["err"], str) and body["err"]
        assert (await request(ws, "evt.stat"))["res"]["rev"] == Z


async def test_oversized_frame_closes_with_1009(prod: Project) -> None:
    async with Hub(MemLedger(prod), limits=Limits(max_message=1000)) as hub:
        async with connect(hub.url, max_size=None) as ws:
            await ws.send("evt.pub#1\n" + "x" * 2000)
            with pytest.raises(ConnectionClosed) as ei:
                await asyncio.wait_for(ws.recv(), 5)
            assert ei.value.rcvd is not None and ei.value.rcvd.code == 1009
        async with connect(hub.url) as ws:  # the hub is still up
            assert (await request(ws, "evt.stat"))["res"]["rev"] == Z


async def test_flood_is_closed_with_policy_code(prod: Project) -> None:
    async with Hub(MemLedger(prod), limits=Limits(rate=50, burst=20)) as hub:
        async with connect(hub.url) as ws:
            with pytest.raises(ConnectionClosed) as ei:
                for i in range(2000):  # bounded: closes after ~20
                    await ws.send(f"evt.stat#{i}")
                for _ in range(2000):
                    await asyncio.wait_for(ws.recv(), 5)
            assert ei.value.rcvd is not None and ei.value.rcvd.code == 1008
            assert "rate" in ei.value.rcvd.reason
        async with connect(hub.url) as ws:
            assert (await request(ws, "evt.stat"))["res"]["rev"] == Z


async def test_slow_reader_is_disconnected_memory_bounded(prod: Project) -> None:
    limits = Limits(max_pending=50, rate=1e6, burst=1_000_000)
    # a subscriber that never reads; small client buffers so the server's writes block
    async with Hub(MemLedger(prod), limits=limits) as hub, \
            connect(hub.url, max_queue=1, close_timeout=0.5) as slow, connect(hub.url) as pub:
            assert (await request(slow, "evt.sub", {"rev": Z, "tops": ["prod.cat"]}))
            big = "y" * 100_000
            for i in range(400):  # bounded: ~10 MB fill the loopback buffers first
                await request(pub, "evt.pub", {"acts": [new(str(i), big)]})
                assert max(hub.service.pending(c) for c in (1, 2)) <= 50
                if hub.service.connections < 2:
                    break
            assert hub.service.connections == 1  # the slow one was dropped
            assert hub.service.pending(1) == 0
            assert (await request(pub, "evt.stat"))["res"]["rev"] != Z  # others unaffected


async def test_requester_that_never_reads_replies_is_disconnected(prod: Project) -> None:
    """Replies are written at once while the connection keeps up (no queue hop); a client
    that stops reading still fills the bounded send queue and is closed (1013)."""
    limits = Limits(send_queue=4, rate=1e6, burst=1_000_000)
    # a schema whose dom.project reply is ~60 KB (evt.hist no longer: one page at a time
    # waits for the reader, tests/hub/test_hist_paging15.py)
    big = parse_project({"project": {"name": "big"}, "big": {"thing": {"key": "int", "fields": {
        f"f{i}": {"type": "str", "label": "L" * 200} for i in range(300)}}}})
    async with Hub(MemLedger(big), limits=limits) as hub, \
            connect(hub.url, max_queue=1, close_timeout=0.5) as slow, connect(hub.url) as pub:
            for i in range(2000):  # bounded: ~120 MB of replies if nothing stopped it
                await slow.send(f"dom.project#{i}")
                await asyncio.sleep(0)
                if hub.service.connections < 2:
                    break
            for _ in range(100):
                if hub.service.connections < 2:
                    break
                await asyncio.sleep(0.05)
            assert hub.service.connections == 1  # the one that does not read was dropped
            # others unaffected
            assert (await request(pub, "evt.stat"))["res"]["mig"] == big.version


class ThreadsLedger(MemLedger):
    """A MemLedger that records which thread read events with which limit."""

    def __init__(self, project: Project):
        super().__init__(project)
        self.reads: list[tuple[str, int]] = []

    def events(self, rev: Rev, tops: Iterable[str] | None = None, limit: int = 0,
               max_bytes: int = 0) -> list[Event]:
        self.reads.append((threading.current_thread().name, limit))
        return super().events(rev, tops, limit, max_bytes)


async def test_sub_catch_up_is_pushed_in_batches_read_off_the_loop(prod: Project) -> None:
    """A subscriber from the zero rev of a big ledger gets a bounded reply, then the rest as
    pushes read on the writer thread (the event loop keeps serving), then live pushes."""
    led = ThreadsLedger(prod)
    limits = Limits(max_batch=40, rate=1e6, burst=1_000_000)
    async with Hub(led, limits=limits) as hub, connect(hub.url) as pub, \
            connect(hub.url) as sub:
        hub.service.BACKLOG_BATCH = 30
        for i in range(1, 301):
            await request(pub, "evt.pub", {"acts": [new(str(i), "x")]})
        led.reads.clear()
        await sub.send('evt.sub#1\n{"rev":"' + Z + '","tops":["prod.cat"]}')
        head, reply = await recv_json(sub)
        assert head == "evt.sub#1" and len(reply["res"]["evs"]) == 40
        keys = [e["key"] for e in reply["res"]["evs"]]
        late = asyncio.create_task(request(pub, "evt.pub", {"acts": [new("301", "late")]}))
        while len(keys) < 301:
            head, up = await recv_json(sub)
            assert head == "evt.update" and len(up["evs"]) <= 30
            keys += [e["key"] for e in up["evs"]]
        await late
        assert keys == [str(i) for i in range(1, 302)]
        batch_reads = [name for name, limit in led.reads if limit == 30]
        assert len(batch_reads) >= 9 and set(batch_reads) == {"outpost-hub-writer"}
        assert await no_frame(sub)


async def test_connection_cap(prod: Project) -> None:
    async with Hub(MemLedger(prod), limits=Limits(max_connections=2)) as hub, \
            connect(hub.url), connect(hub.url) as b:
            await request(b, "evt.stat")
            with pytest.raises(InvalidStatus) as ei:
                async with connect(hub.url):
                    pass
            assert ei.value.response.status_code == 503


async def test_origin_allowlist(prod: Project) -> None:
    async with Hub(MemLedger(prod), origins=["https://ok.example"]) as hub:
        async with connect(hub.url, origin="https://ok.example") as ws:  # type: ignore[arg-type]
            await request(ws, "evt.stat")
        with pytest.raises(InvalidStatus) as ei:
            async with connect(hub.url, origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert ei.value.response.status_code == 403


async def test_idle_timeout(prod: Project) -> None:
    """A client that answers nothing (not even the hub's pings) is closed with 1008; one
    that answers pings is not idle (tests/hub/test_ops_review10.py: with a real process)."""
    async with Hub(MemLedger(prod), limits=Limits(idle_timeout=0.3)) as hub:
        host, port = hub.url.removeprefix("ws://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: "
                     "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        got = b""
        try:
            async with asyncio.timeout(5):
                while b"idle for 0.3 s" not in got and (chunk := await reader.read(4096)):
                    got += chunk
        finally:
            writer.close()
        assert b"\x88" in got and b"\x03\xf0idle for 0.3 s" in got  # close frame, 1008
        async with connect(hub.url) as ws:
            await asyncio.sleep(1)  # more than 3 idle timeouts: its pongs count
            assert "res" in await request(ws, "evt.stat")


# -- auth ---------------------------------------------------------------------------------------


@pytest.fixture
def users(tmp_path: Path) -> Users:
    u = Users(tmp_path / "users.db")
    yield u  # type: ignore[misc]
    u.close()


async def test_auth_failures_and_roles(prod: Project, users: Users) -> None:
    ann = users.add("ann", "writer")
    rita = users.add("rita", "reader")
    async with Hub(MemLedger(prod), users=users) as hub:
        with pytest.raises(InvalidStatus) as ei:
            async with connect(hub.url):
                pass
        assert ei.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as ei:
            async with connect(hub.url, additional_headers={"Authorization": "Bearer nope"}):
                pass
        assert ei.value.response.status_code == 401
        hdr = {"Authorization": f"Bearer {rita}"}
        async with connect(hub.url, additional_headers=hdr) as r:
            res = await request(r, "evt.pub", {"acts": [new("1", "x")]})
            assert "reader and cannot publish" in res["err"]
            assert (await request(r, "evt.stat"))["res"]["rev"] == Z
        hdr = {"Authorization": f"Bearer {ann}"}
        async with connect(hub.url, additional_headers=hdr) as a:
            res = await request(a, "evt.pub", {"usr": "mallory", "acts": [new("1", "x")]})
            assert "res" in res
            hist = await request(a, "evt.hist", {"top": "prod.cat", "key": "1"})
            assert hist["res"][0]["usr"] == "ann"  # the token's user, not the sent one
        assert users.remove("ann")
        with pytest.raises(InvalidStatus):
            async with connect(hub.url, additional_headers=hdr):
                pass


def test_users_store_hashes_tokens(users: Users) -> None:
    tok = users.add("bob", "writer")
    raw = users.path.read_bytes()
    assert tok.encode() not in raw
    assert users.authenticate(tok) is not None and users.authenticate(tok).name == "bob"  # type: ignore[union-attr]
    assert users.authenticate(tok[:-1]) is None
    assert [u.name for u in users.list()] == ["bob"]


def test_auth_none_refused_off_loopback(prod: Project) -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="loopback"):
        Hub(MemLedger(prod), host="0.0.0.0")


# -- group commit on a real SQLite ledger ----------------------------------------------------------


async def test_group_commit_acks_every_publish_after_commit(prod: Project,
                                                            tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "hub.db", prod)
    async with Hub(ledger, close_ledger=True) as hub:
        async def client(n: int) -> list[str]:
            async with connect(hub.url) as ws:
                revs = []
                for i in range(20):
                    res = await request(ws, "evt.pub", {"acts": [new(str(n * 100 + i), "x")]})
                    revs.append(res["res"]["rev"])
                return revs

        results = await asyncio.gather(*(client(n) for n in range(10)))
        assert sum(len(r) for r in results) == 200
        assert hub.commits < 200  # several clients' transactions shared a commit
        assert len(ledger.events(0)) == 200
    reopened = open_ledger(tmp_path / "hub.db", prod)
    try:
        assert len(reopened.events(0)) == 200  # durable: all acknowledged ones are there
    finally:
        reopened.close()


async def test_pushes_in_order_no_gap_no_dup_under_concurrency(prod: Project,
                                                               tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "hub.db", prod)
    async with Hub(ledger, close_ledger=True) as hub, connect(hub.url) as sub:
        async def client(n: int) -> None:
            async with connect(hub.url) as ws:
                for i in range(10):
                    await request(ws, "evt.pub", {"acts": [new(str(n * 100 + i), "x")]})

        pubs = asyncio.gather(*(client(n) for n in range(5)))
        await asyncio.sleep(0.01)
        first = await request(sub, "evt.sub", {"rev": Z, "tops": ["prod.cat"]})
        await pubs
        ids = [e["id"] for e in ((first["res"] or {}).get("evs") or [])]
        for _ in range(200):
            if len(ids) >= 50:
                break
            _, push = await recv_json(sub)
            ids += [e["id"] for e in push["evs"]]
        assert ids == list(range(1, 51))


async def test_publishing_subscribers_get_every_frame_in_revision_order(prod: Project) -> None:
    """Subscribers that publish: a push of an earlier revision (another client's event in
    the same commit) is written before the publisher's own reply, never after it."""
    limits = Limits(rate=1e6, burst=1_000_000)
    async with Hub(MemLedger(prod), limits=limits) as hub:
        seen: dict[int, list[tuple[int, str]]] = {}

        async def client(n: int) -> None:
            async with connect(hub.url) as ws:
                await request(ws, "evt.sub", {"rev": Z, "tops": ["prod.cat"]})
                got = seen[n] = []
                for i in range(40):
                    await ws.send(f"evt.pub#{i}\n" + orjson.dumps(
                        {"acts": [new(str(n * 1000 + i + 1), "x")]}).decode())
                    while True:
                        head, payload = await recv_json(ws)
                        up = payload if head == "evt.update" else payload["res"]
                        got += [(e["id"], head) for e in up["evs"]]
                        if head == f"evt.pub#{i}":
                            break

        await asyncio.gather(*(client(n) for n in range(6)))
        for got in seen.values():
            ids = [i for i, _ in got]
            assert ids == sorted(ids), got  # a reply never overtakes an earlier push
            assert len(ids) == len(set(ids))


class AuditsFail(MemLedger):
    """A MemLedger whose audit reads fail while ``broken``."""

    broken = False

    def audits(self, lo: Rev, hi: Rev) -> list[Audit]:
        if self.broken:
            raise StorageError("reading audits failed on hub.db: disk I/O error")
        return super().audits(lo, hi)

    def audits_at(self, revs: Sequence[Rev]) -> list[Audit]:
        if self.broken:
            raise StorageError("reading audits failed on hub.db: disk I/O error")
        return super().audits_at(revs)


async def test_a_push_that_cannot_be_built_closes_its_connection(prod: Project) -> None:
    """Building a push can read the ledger (audits of revisions not in the cache); when
    that fails the subscriber is closed with 1013 to resync, not left without pushes."""
    led = AuditsFail(prod)
    async with Hub(led) as hub, connect(hub.url) as sat, connect(hub.url) as pub:
        hub.service.AUDIT_CACHE = 0  # every push reads its audits
        await request(sat, "evt.sat", {"rev": Z, "tops": ["prod.cat"], "trans": [],
                                       "audits": True})
        assert "res" in await request(pub, "evt.pub", {"acts": [new("1", "a")]})
        head, push = await recv_json(sat)
        assert head == "evt.update" and push["audits"][0]["usr"] == "anonymous"
        led.broken = True
        assert "res" in await request(pub, "evt.pub", {"acts": [new("2", "b")]})
        with pytest.raises(ConnectionClosed) as ei:
            await recv_json(sat)
        assert ei.value.rcvd is not None and ei.value.rcvd.code == 1013
        assert "res" in await request(pub, "evt.stat")


def test_json_helpers_roundtrip() -> None:
    assert orjson.loads(orjson.dumps({"a": 1})) == {"a": 1}


async def test_stop_acknowledges_in_flight_publishes(prod: Project, tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "hub.db", prod)
    hub = Hub(ledger)
    await hub.start()
    acked: list[str] = []

    async def client(n: int) -> None:
        try:
            async with connect(hub.url) as ws:
                for i in range(500):  # bounded; the hub stops long before
                    res = await request(ws, "evt.pub", {"acts": [new(str(n * 1000 + i), "x")]})
                    if "res" in res:
                        acked.append(str(n * 1000 + i))
        except (ConnectionClosed, TimeoutError):
            pass

    tasks = [asyncio.create_task(client(n)) for n in range(5)]
    await asyncio.sleep(0.3)
    await hub.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    stored = {e.key for e in ledger.events(0)}
    ledger.close()
    assert acked and set(acked) <= stored  # every acknowledged publish is durable


class BrokenLedger(MemLedger):
    """A MemLedger whose publish hits a bug and whose reads fail with a StorageError, on
    demand."""

    bug = False
    broken = False

    def publish_many(self, trans: Any, now: Any = None) -> Any:
        if self.bug:
            raise RuntimeError("a bug in publish_many")
        return super().publish_many(trans, now)

    def events(self, rev: Any, tops: Any = None, limit: int = 0, max_bytes: int = 0) -> Any:
        if self.broken:
            raise StorageError("reading events failed on hub.db: disk I/O error: retry")
        return super().events(rev, tops, limit, max_bytes)


async def test_publish_bug_and_storage_errors_get_error_replies_over_sockets(
        prod: Project, caplog: pytest.LogCaptureFixture) -> None:
    ledger = BrokenLedger(prod)
    async with Hub(ledger) as hub, connect(hub.url) as ws:
        await request(ws, "evt.pub", {"acts": [new("9", "p", "prod.prod")]})
        ledger.bug = True
        sat = {"rev": Z, "tops": ["prod.cat"], "trans": [{"uid": "u1", "acts": [new("1", "a")]}]}
        with caplog.at_level(logging.ERROR, "outpost.hub"):
            r = await request(ws, "evt.sat", sat)
        # not a reject (which would drop the edit from the satellite's pending queue)
        assert "res" not in r and "stay pending" in r["err"] and "RuntimeError" in r["err"]
        assert any(x.exc_info is not None for x in caplog.records)  # logged as a bug
        ledger.bug = False
        ledger.broken = True
        r = await request(ws, "evt.sub", {"rev": Z, "tops": ["prod.prod"]})
        # the connection stays open (no 1011); the cause is in the hub's log, not the reply
        assert r["code"] == "read" and "disk I/O error" not in r["err"]
        ledger.broken = False
        r = await request(ws, "evt.sat", sat)
        assert [a["uid"] for a in r["res"]["acks"]] == ["u1"]
        r = await request(ws, "evt.sub", {"rev": Z, "tops": ["prod.prod"]})
        assert [e["key"] for e in r["res"]["evs"]] == ["9"]


def _plain_get(url: str, headers: dict[str, str]) -> int:
    import http.client

    host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        c.request("GET", "/", headers=headers)
        return c.getresponse().status
    finally:
        c.close()


async def test_a_plain_get_answers_as_docs_operations_says(project: Project,
                                                           tmp_path: Path) -> None:
    # docs/operations.md §2: the load balancer's HTTP health check
    users = Users(tmp_path / "users.db")
    token = users.add("ann")
    try:
        async with Hub(MemLedger(project), port=0, users=users) as hub:
            assert await asyncio.to_thread(_plain_get, hub.url, {}) == 401
            assert await asyncio.to_thread(
                _plain_get, hub.url, {"Authorization": f"Bearer {token}"}) == 426
        async with Hub(MemLedger(project), port=0) as hub:  # --auth none
            assert await asyncio.to_thread(_plain_get, hub.url, {}) == 426
    finally:
        users.close()
    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    assert "`401`" in text and "`426`" in text
