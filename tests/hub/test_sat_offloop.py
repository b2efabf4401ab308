"""An ``evt.sat`` reply older than the hub's recent events is read from the ledger on the writer
thread, where the reply is in the connection's send order, and keeps its promise: every event
of its topics after the request's rev up to the reply's rev (the fanned-out revision when it
is built), nothing past it, in order, the pushes after it consistent."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from core.errors import StorageError
from core.ledger import MemLedger
from core.model import Audit, Event
from core.revision import Rev, format_rev, parse_rev
from core.schema import Project
from core.wire import dec_trans
from hubserver import satreply
from hubserver.limits import Limits
from hubserver.recent import RecentEvents
from hubserver.server import Hub
from hubserver.service import Flush, HubService, Send
from tests.hub.conftest import Clock, recv_json, request

Z = "0001-01-01T00:00:00Z"


def act(key: str, name: str, top: str = "prod.cat") -> dict[str, Any]:
    return {"top": top, "key": key, "cmd": "new", "arg": {"name": name}}


def fill(led: MemLedger, n: int, top: str = "prod.cat", first: int = 1) -> None:
    """``n`` records created one per revision, straight on the ledger (before a hub starts:
    older than its recent events)."""
    for i in range(first, first + n):
        led.publish(dec_trans({"acts": [act(str(i), "x", top)]}), "seed")


def sat(tok: str, rev: str = Z, tops: tuple[str, ...] = ("prod.cat",), lim: int = 0,
        keys: tuple[str, ...] = ()) -> str:
    trans = [{"uid": f"u{k}", "acts": [act(k, "s")]} for k in keys]
    req: dict[str, Any] = {"rev": rev, "tops": list(tops), "trans": trans, "audits": True}
    if lim:
        req["lim"] = lim
    return f"evt.sat#{tok}\n" + orjson.dumps(req).decode()


def pub(key: str, top: str = "prod.cat") -> str:
    return "evt.pub#p\n" + orjson.dumps({"acts": [act(key, "o", top)]}).decode()


def res_of(text: str) -> Any:
    return orjson.loads(text.partition("\n")[2])["res"]


class GatedReads(MemLedger):
    """Reads with a limit (catch-up reads) wait for ``gate``, record their thread and fail
    once when ``fail`` is set."""

    def __init__(self, prod: Project):
        super().__init__(prod)
        self.gate = threading.Event()
        self.gate.set()
        self.threads: list[str] = []
        self.fail = False

    def events(self, rev: Rev, tops: Iterable[str] | None = None, limit: int = 0,
               max_bytes: int = 0) -> list[Event]:
        if limit:
            self.threads.append(threading.current_thread().name)
            self.gate.wait(5)
            if self.fail:
                self.fail = False
                raise StorageError("disk on fire")
        return super().events(rev, tops, limit, max_bytes)


async def test_sat_reply_is_read_off_the_loop_and_the_next_requests_wait(prod: Project) -> None:
    """While a satellite's old catch-up batch is read the hub answers other clients (before:
    the read ran on the event loop); the satellite's pipelined requests are answered after
    the reply (an evt.sub after it adds to the subscription the reply set), then the pushes
    follow, every event once and in order."""
    led = GatedReads(prod)
    fill(led, 100)
    async with Hub(led, limits=Limits(max_batch=5000, rate=1e6, burst=10**6)) as hub, \
            connect(hub.url) as other, connect(hub.url) as s:
        led.threads.clear()
        led.gate.clear()
        s.protocol.send_text(sat("1").encode())
        s.protocol.send_text(b"evt.sub#2\n" + orjson.dumps(
            {"rev": Z, "tops": ["prod.prod"]}))
        s.protocol.send_text(b"evt.stat#3")
        s.send_data()
        for _ in range(1000):  # the reply's read started (on the writer thread)
            if led.threads:
                break
            await asyncio.sleep(0.002)
        assert led.threads == ["outpost-hub-writer"]
        # the event loop is not held by the read
        assert (await request(other, "evt.stat", timeout=2))["res"]["rev"] != Z
        led.gate.set()
        heads: list[str] = []
        first: Any = None
        for _ in range(3):
            head, body = await recv_json(s)
            heads.append(head)
            if head == "evt.sat#1":
                first = body["res"]
        assert heads == ["evt.sat#1", "evt.sub#2", "evt.stat#3"]
        assert [e["key"] for e in first["evs"]] == [str(i) for i in range(1, 101)]
        assert len(first["audits"]) == 100 and not first.get("more")
        assert first["rev"] == first["evs"][-1]["rev"]
        # both subscriptions hold: the evt.sub was not replaced by the evt.sat's topics
        await request(other, "evt.pub", {"acts": [act("101", "late")]})
        await request(other, "evt.pub", {"acts": [act("1", "p", "prod.prod")]})
        got: list[tuple[str, str]] = []
        while len(got) < 2:
            head, body = await recv_json(s)
            assert head == "evt.update"
            got += [(e["top"], e["key"]) for e in body["evs"]]
        assert got == [("prod.cat", "101"), ("prod.prod", "1")]


async def test_sat_read_failing_answers_with_an_error_and_serves_the_next(prod: Project) -> None:
    """A failed read: the request's error reply (code "read", with the acks of its
    transactions: published before the read), the subscription as it was, and the
    connection's next request is served."""
    led = GatedReads(prod)
    fill(led, 20)
    async with Hub(led, limits=Limits(rate=1e6, burst=10**6)) as hub, \
            connect(hub.url) as s:
        led.fail = True
        s.protocol.send_text(sat("1", keys=("50",)).encode())
        s.protocol.send_text(b"evt.stat#2")
        s.send_data()
        head, body = await recv_json(s)
        assert head == "evt.sat#1" and body["code"] == "read"
        assert "disk on fire" not in body["err"]  # the cause is in the hub's log
        assert [a["uid"] for a in body["acks"]] == ["u50"]
        head, body = await recv_json(s)
        assert head == "evt.stat#2"
        # asked again (the satellite's retry): acked once, with everything
        await s.send(sat("3", keys=("50",)))
        head, body = await recv_json(s)
        assert head == "evt.sat#3"
        assert [e["key"] for e in body["res"]["evs"]] == [*map(str, range(1, 21)), "50"]
        assert [a["uid"] for a in body["res"]["acks"]] == ["u50"]


def start(svc: HubService, conn: str, text: str) -> satreply.SatRead:
    """Handle an evt.sat without transactions: the Flush with its ledger read."""
    outs, job = svc.handle(conn, text)
    assert job is None
    (o,) = outs
    assert isinstance(o, Flush) and isinstance(o.catch_up, satreply.SatRead), outs
    return o.catch_up


def test_events_fanned_out_during_the_read_are_in_the_reply(prod: Project,
                                                              clock: Clock) -> None:
    """The read is bounded by the revision fanned out when it started; what was fanned out
    before the reply is built comes from the recent events, so the reply's rev is the hub's
    and the pushes after it carry only later events."""
    led = MemLedger(prod)
    fill(led, 30)
    svc = HubService(led, clock)
    svc.connect("S", "sat")
    svc.connect("O", "other")
    r = start(svc, "S", sat("1"))
    upto = svc.rev
    got = satreply.sat_read(led, r, upto)
    for k in ("31", "32", "33"):  # committed and fanned out while the read ran
        svc.handle_sync("O", pub(k))
    svc.handle_sync("O", pub("1", "prod.prod"))  # another topic
    text = satreply.sat_read_done(svc, r, got, upto)
    assert text
    res = res_of(text)
    assert [e["key"] for e in res["evs"]] == [str(i) for i in range(1, 34)]
    # the hub's: the prod.prod publish (compared as revisions: "…27.08Z" is 080 ms)
    assert parse_rev(res["rev"]) > parse_rev(res["evs"][-1]["rev"])
    assert len(res["audits"]) == 33 and not res.get("more")
    assert svc.take_push("S") is None  # nothing fanned out before the reply again
    outs = svc.handle_sync("O", pub("34"))
    assert any(isinstance(o, Flush) and o.conn == "S" for o in outs)
    push = orjson.loads((svc.take_push("S") or "").partition("\n")[2])
    assert [e["key"] for e in push["evs"]] == ["34"]


def test_recent_events_moved_on_during_the_read_read_again(prod: Project,
                                                           clock: Clock) -> None:
    """More was fanned out during the read than the recent events keep: the rest is read
    from the ledger again, up to the new fanned-out revision."""
    led = MemLedger(prod)
    fill(led, 10)
    svc = HubService(led, clock)
    svc._recent = RecentEvents(svc.rev, 4)
    svc.connect("S", "sat")
    svc.connect("O", "other")
    r = start(svc, "S", sat("1"))
    upto = svc.rev
    got = satreply.sat_read(led, r, upto)
    for k in range(11, 21):
        svc.handle_sync("O", pub(str(k)))
    assert not svc._recent.covers(upto)
    assert satreply.sat_read_done(svc, r, got, upto) is None
    upto = svc.rev
    text = satreply.sat_read_done(svc, r, satreply.sat_read(led, r, upto), upto)
    assert text
    res = res_of(text)
    assert [e["key"] for e in res["evs"]] == [str(i) for i in range(1, 21)]
    assert res["rev"] == format_rev(svc.rev) and not res.get("more")


def test_lim_cuts_the_read_and_the_recent_part(prod: Project, clock: Clock) -> None:
    """``lim`` caps the reply (whole revisions) whether the cut falls in the ledger read or
    in the recent events; with ``more`` the reply's rev is its last event's and pushes wait."""
    for lim, fanned, want, more in ((5, 0, 5, True), (10, 3, 10, True), (12, 3, 12, True),
                                    (13, 3, 13, False), (20, 3, 13, False)):
        led = MemLedger(prod)
        fill(led, 10)
        svc = HubService(led, clock)
        svc.connect("S", "sat")
        svc.connect("O", "other")
        r = start(svc, "S", sat("1", lim=lim))
        upto = svc.rev
        got = satreply.sat_read(led, r, upto)
        for k in range(11, 11 + fanned):
            svc.handle_sync("O", pub(str(k)))
        text = satreply.sat_read_done(svc, r, got, upto)
        assert text
        res = res_of(text)
        keys = [e["key"] for e in res["evs"]]
        assert keys == [str(i) for i in range(1, want + 1)], (lim, keys)
        assert bool(res.get("more")) is more, lim
        assert res["rev"] == (res["evs"][-1]["rev"] if more else format_rev(svc.rev))
        assert svc.subs.get("S").paused is more


def test_handle_sync_builds_the_reply_at_once(prod: Project, clock: Clock) -> None:
    """A synchronous driver gets the reply in place, as before."""
    led = MemLedger(prod)
    fill(led, 7)
    svc = HubService(led, clock)
    svc.connect("S", "sat")
    outs = svc.handle_sync("S", sat("1", keys=("8",)))
    assert isinstance(outs[0], Send)
    res = res_of(outs[0].text)
    assert [e["key"] for e in res["evs"]] == [str(i) for i in range(1, 9)]
    assert [a["uid"] for a in res["acks"]] == ["u8"]


class GatedPub(MemLedger):
    """A ledger whose next commit waits for ``gate`` (so the publishes that arrive meanwhile
    land together in the commit after it)."""

    def __init__(self, prod: Project):
        super().__init__(prod)
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def publish_many(self, items: Any, now: Any) -> Any:
        self.entered.set()
        self.gate.wait(5)
        return super().publish_many(items, now)


async def test_events_pending_for_a_subscriber_are_not_pushed_ahead_of_its_reply(
        prod: Project) -> None:
    """A live subscriber's evt.sat read off the loop: the events waiting to be pushed to it
    (other clients', committed with its own transaction) are in the reply, so they are
    not pushed before it as well (review: they were, twice)."""

    led = GatedPub(prod)
    fill(led, 10)
    async with Hub(led, limits=Limits(rate=1e6, burst=10**6)) as hub, \
            connect(hub.url) as o, connect(hub.url) as t, connect(hub.url) as s, \
            connect(hub.url) as g:
        hub.service._recent = RecentEvents(hub.service.rev, 4)
        res = (await request(s, "evt.sat", orjson.loads(sat("x").partition("\n")[2])))["res"]
        w = res["rev"]
        assert len(res["evs"]) == 10
        for k in range(11, 17):  # fanned out and pushed: the recent events move past w
            await request(o, "evt.pub", {"acts": [act(str(k), "o")]})
        assert not hub.service._recent.covers(parse_rev(w))
        led.gate.clear()
        led.entered.clear()
        # g's publish of a topic s does not follow holds the writer in a gated commit,
        # so t's, o's and s's publishes all wait for the next one: committed together,
        # their events are fanned out to s in the same loop callback that plans s's reply.
        # (Session 14: 17 was t's gated commit, o's and s's the next one; when the writer
        # thread was slow to return that one the loop pushed 17 first, as it should, and
        # the reply from w carried it again: a push crossing the request, which the
        # satellite holds and drops as the reply covers it, not the case this test is
        # about.)
        await g.send("evt.pub#g\n" + orjson.dumps(
            {"acts": [act("1", "g", "prod.prod")]}).decode())
        await asyncio.to_thread(led.entered.wait, 5)
        await t.send("evt.pub#t\n" + orjson.dumps({"acts": [act("17", "t")]}).decode())
        await o.send("evt.pub#o\n" + orjson.dumps({"acts": [act("18", "o")]}).decode())
        await s.send(sat("3", rev=w, keys=("50",)))
        # the hub holds all four publishes (g's in the gated commit, the others queued
        # behind it) before the commit goes on
        for _ in range(1000):  # bounded: 10 s
            if sum(p.busy for p in hub._peers.values()) == 4:
                break
            await asyncio.sleep(0.01)
        assert sum(p.busy for p in hub._peers.values()) == 4
        assert len(hub._jobs) == 3  # one commit after the gated one
        led.gate.set()
        got: list[tuple[str, list[str]]] = []
        for _ in range(50):  # bounded
            head, body = await recv_json(s)
            evs = body["evs"] if head == "evt.update" else body["res"]["evs"]
            got.append((head, [e["key"] for e in evs]))
            if head == "evt.sat#3":
                break
        pushed = [k for h, ks in got if h == "evt.update" for k in ks if int(k) > 16]
        reply = got[-1][1]
        assert got[-1][0] == "evt.sat#3"
        assert {"17", "18", "50"} <= set(reply), got
        assert not set(pushed) & set(reply), got


def test_a_failed_read_pushes_the_events_it_took_after_its_error_reply(
        prod: Project, clock: Clock) -> None:
    """The events pending for the connection are taken out for the reply; when its read
    fails they are pushed after the error reply instead, as they were before it."""
    led = MemLedger(prod)
    fill(led, 30)
    svc = HubService(led, clock)
    svc.connect("S", "sat")
    svc.connect("O", "other")
    first = [o for o in svc.handle_sync("S", sat("1")) if isinstance(o, Send)]
    assert len(res_of(first[-1].text)["evs"]) == 30  # S is live on prod.cat now
    svc.handle_sync("O", pub("31"))  # pending for S, not pushed yet
    assert svc.has_push("S")
    r = start(svc, "S", sat("2"))  # from the start again: read from the ledger
    assert [e.key for e in r.held] == ["31"] and not svc.has_push("S")
    text = satreply.sat_read_failed(svc, r, StorageError("disk on fire"))
    assert orjson.loads(text.partition("\n")[2])["code"] == "read"
    push = orjson.loads((svc.take_push("S") or "").partition("\n")[2])
    assert [e["key"] for e in push["evs"]] == ["31"]


class CountedAudits(MemLedger):
    """Counts the audit rows its reads return."""

    rows = 0

    def audits(self, lo: Rev, hi: Rev) -> list[Audit]:
        got = super().audits(lo, hi)
        self.rows += len(got)
        return got

    def audits_at(self, revs: Sequence[Rev]) -> list[Audit]:
        got = super().audits_at(revs)
        self.rows += len(got)
        return got


def test_a_read_reply_reads_the_audits_of_its_topics_only(prod: Project, clock: Clock) -> None:
    """The audits of an evt.sat reply read from the ledger are its revisions' only, not those
    of every topic's revisions in its range (nine of ten here); when its events are all the
    ledger holds in their range one range read is the cheaper way and stays."""
    led = CountedAudits(prod)
    for i in range(1, 21):
        fill(led, 1, first=i)
        fill(led, 9, "prod.prod", first=10 * i)
    svc = HubService(led, clock)
    svc.connect("S", "sat")
    r = start(svc, "S", sat("1"))
    (o,) = satreply.sat_read_sync(svc, r)
    assert isinstance(o, Send)
    res = res_of(o.text)
    assert [e["key"] for e in res["evs"]] == [str(i) for i in range(1, 21)]
    assert [a["rev"] for a in res["audits"]] == [e["rev"] for e in res["evs"]]
    assert led.rows == 20  # was 191: every revision from the first event's to the last's
    # the other topic: its events are nine in ten of the range's, read as one range
    led.rows = 0
    r = start(svc, "S", sat("2", tops=("prod.prod",)))
    (o,) = satreply.sat_read_sync(svc, r)
    assert len(res_of(o.text)["audits"]) == 180 and led.rows == 180 + 19


def test_the_events_read_are_encoded_where_they_were_read(
        prod: Project, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reply's events and audits read from the ledger are encoded by ``sat_read`` (the
    writer thread), not while the reply is built on the loop: there only those fanned out
    during the read are. The frame is the one ``enc_sat_res`` makes, whether the bytes cut
    the reply in the read, in the recent events or nowhere."""
    from core.wire import dec_sat_res, enc_sat_res, format_reply

    encoded: list[int] = []
    real = satreply.enc_events

    def counting(evs: Any, fmt: Any = None) -> Any:
        encoded.append(len(evs))
        return real(evs, fmt)

    monkeypatch.setattr(satreply, "enc_events", counting)
    # budget 3,000 bytes (fit's count): 15 small events fit, with 3 more fanned out too;
    # 15 big ones do not (the read is cut); 6 big of 15 fit, 5 fanned out then do not all
    for big, fanned, n, n_read in ((0, 0, 15, 15), (0, 3, 18, 15), (1, 0, 12, 12),
                                   (10, 5, 18, 15)):
        led = MemLedger(prod)
        for i in range(1, 16):
            name = "x" * (120 if i == big or (big and i > big) else 10)
            led.publish(dec_trans({"acts": [act(str(i), name)]}), "seed")
        svc = HubService(led, clock, Limits(max_message=6000, rate=1e6, burst=10**6))
        svc.connect("S", "sat")
        svc.connect("O", "other")
        r = start(svc, "S", sat("1"))
        upto = svc.rev
        encoded.clear()
        got = satreply.sat_read(led, r, upto)
        assert encoded == [len(got.evs)] and got.enc is not None, (big, fanned)
        for k in range(16, 16 + fanned):
            svc.handle_sync("O", pub(str(k)))
        encoded.clear()
        text = satreply.sat_read_done(svc, r, got, upto)
        assert text
        res = res_of(text)
        keys = [int(e["key"]) for e in res["evs"]]
        assert keys == list(range(1, len(keys) + 1)), (big, fanned, keys)
        assert sum(encoded) == max(0, len(keys) - len(got.evs)), (big, fanned, encoded)
        assert len(res["audits"]) == len(keys)
        # the text enc_sat_res makes of the same reply
        assert text == format_reply("evt.sat", "1", enc_sat_res(dec_sat_res(res)))
        assert (len(keys), len(got.evs)) == (n, n_read), (big, fanned)
        assert bool(res.get("more")) is (n < 15 + fanned)


def test_notes_pushed_after_a_read_reply_claim_no_earlier_revision(
        prod: Project, clock: Clock) -> None:
    """A monitor's note fanned out while an evt.sat reply was read waits behind that reply
    (the connection's send order) and goes after it: its push claims the reply's revision,
    not the request's (a push whose rev went back behind the reply; found by the
    simulation's evt.sat watchers)."""
    led = MemLedger(prod)
    fill(led, 30)
    svc = HubService(led, clock)
    svc.connect("S", "sat")
    svc.connect("O", "other")
    mon = {"watch": [{"top": "prod.cat", "keys": ["new"]}]}
    svc.handle_sync("S", "evt.mon#m\n" + orjson.dumps(mon).decode())
    for lim in (0, 10):  # the whole catch-up, and a first batch (more)
        r = start(svc, "S", sat(f"s{lim}", lim=lim))
        upto = svc.rev
        got = satreply.sat_read(led, r, upto)
        svc.handle_sync("O", pub(str(31 + lim)))  # noted for S while its reply is read
        text = satreply.sat_read_done(svc, r, got, upto)
        assert text
        reply = res_of(text)
        assert bool(reply.get("more")) is bool(lim)
        push = orjson.loads((svc.take_push("S") or "").partition("\n")[2])
        assert push["note"] and "evs" not in push
        assert parse_rev(push["rev"]) >= parse_rev(reply["rev"]), (lim, push, reply["rev"])
