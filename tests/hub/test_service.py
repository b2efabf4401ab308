"""HubService without sockets: every service, deterministic (MemLedger, manual clock)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from core.errors import StorageError
from core.ledger import MemLedger
from core.ledger.protocols import HistoryEntry
from core.ledger.sql import SqlLedger
from core.model import Action, Audit, Cmd, Event, Trans
from core.revision import ZERO_REV, Rev, format_rev, parse_rev
from core.schema import Project
from hubserver.limits import CLOSE_POLICY, CLOSE_PROTOCOL, CLOSE_TOO_SLOW, Limits
from hubserver.service import Close, Flush, HubService, Out, Send
from tests.hub.conftest import Clock

Z = "0001-01-01T00:00:00Z"


def body(out: Out) -> Any:
    assert isinstance(out, Send), out
    _head, _, raw = out.text.partition("\n")
    return orjson.loads(raw)


def frame(subj: str, obj: Any = None) -> str:
    return subj if obj is None else subj + "\n" + orjson.dumps(obj).decode()


def new(key: str, name: str, top: str = "prod.cat") -> dict[str, Any]:
    return {"top": top, "key": key, "cmd": "new", "arg": {"name": name}}


@pytest.fixture
def svc(prod: Project, clock: Clock) -> HubService:
    s = HubService(MemLedger(prod), clock)
    for c, role in (("A", "writer"), ("B", "writer"), ("C", "writer"), ("R", "reader")):
        s.connect(c, f"user{c}", role)
    return s


def push_of(svc: HubService, outs: list[Out], conn: str) -> Any | None:
    flushes = [o for o in outs if isinstance(o, Flush) and o.conn == conn]
    if not flushes:
        return None
    assert len(flushes) == 1
    text = svc.take_push(conn)
    assert text is not None and text.startswith("evt.update\n") and text.endswith("\n")
    return orjson.loads(text.split("\n", 1)[1])


def drain(svc: HubService, conn: str, outs: list[Out]) -> list[str]:
    """The frames ``conn`` is sent for ``outs``, in the adapter's send order: a catch-up
    where its Flush is, coalesced pushes when a plain Flush is reached."""
    texts: list[str] = []
    for o in outs:
        if o.conn != conn:
            continue
        if isinstance(o, Send):
            texts.append(o.text)
        elif isinstance(o, Flush) and o.catch_up is not None:
            texts.extend(drain(svc, conn, svc.catch_up_sync(conn, o.catch_up)))
        elif isinstance(o, Flush):
            if (text := svc.take_push(conn)) is not None:
                texts.append(text)
        else:
            raise AssertionError(o)
    return texts


def test_stat_reply_shape(svc: HubService) -> None:
    (out,) = svc.handle_sync("A", "evt.stat#1")
    assert isinstance(out, Send) and out.text.startswith("evt.stat#1\n")
    res = body(out)["res"]
    # daql's Status, plus the ledger's id, the hub's frame limit, that it honours evt.sat's
    # cont, that it acks by uid and the connection's role (Outpost extensions)
    assert res == {"rev": Z, "mig": svc.ledger.project.version, "on": Z, "off": Z,
                   "ledger": svc.ledger.ledger_id, "max_message": svc.limits.max_message,
                   "cont": True, "acks": True, "role": "writer"}
    assert len(res["ledger"]) == 32
    (out,) = svc.handle_sync("R", "evt.stat#2")  # a reader's connection is told so
    assert isinstance(out, Send) and body(out)["res"]["role"] == "reader"


def test_pub_reply_and_push_to_others_not_self(svc: HubService) -> None:
    svc.handle_sync("A", frame("evt.sub#1", {"rev": Z, "tops": ["prod.cat"]}))
    (r,) = svc.handle_sync("B", frame("evt.sub#1", {"rev": Z, "tops": ["prod.cat"]}))
    assert body(r) == {"res": None}
    outs = svc.handle_sync("A", frame("evt.pub#2", {"acts": [new("1", "a")]}))
    reply = body(outs[0])["res"]
    assert reply["evs"][0]["key"] == "1" and reply["evs"][0]["id"] == 1
    assert push_of(svc, outs, "A") is None
    pushed = push_of(svc, outs, "B")
    assert pushed["evs"] == reply["evs"] and pushed["rev"] == reply["rev"]


def test_pushes_coalesce_until_taken(svc: HubService) -> None:
    svc.handle_sync("B", frame("evt.sub#1", {"rev": Z, "tops": ["prod.cat"]}))
    flushes = 0
    for i in range(5):
        outs = svc.handle_sync("A", frame("evt.pub", {"acts": [new(str(i), "x")]}))
        flushes += sum(isinstance(o, Flush) for o in outs)
    assert flushes == 1  # one pending flush per connection
    assert svc.pending("B") == 5
    text = svc.take_push("B")
    assert text is not None
    assert [e["key"] for e in orjson.loads(text.split("\n", 1)[1])["evs"]] == list("01234")
    assert svc.take_push("B") is None


def test_pending_pushes_of_subscribers_are_their_own(svc: HubService) -> None:
    """Each subscriber's pending push is its own (since session 12 the fan-out's delivery
    becomes the pending one, not a copy): coalesced, taken and kept apart."""
    for c in ("B", "C"):
        svc.handle_sync(c, frame("evt.sub#1", {"rev": Z, "tops": ["prod.cat"]}))

    def keys(conn: str) -> list[str]:
        text = svc.take_push(conn)
        assert text is not None
        return [e["key"] for e in orjson.loads(text.split("\n", 1)[1])["evs"]]

    svc.handle_sync("A", frame("evt.pub#2", {"acts": [new("1", "a")]}))
    svc.handle_sync("A", frame("evt.pub#3", {"acts": [new("2", "b")]}))
    assert keys("B") == ["1", "2"]
    svc.handle_sync("A", frame("evt.pub#4", {"acts": [new("3", "c"), new("4", "d")]}))
    svc.handle_sync("A", frame("evt.pub#5", {"acts": [new("5", "e")]}))
    assert keys("C") == ["1", "2", "3", "4", "5"]
    assert keys("B") == ["3", "4", "5"]
    assert svc.take_push("B") is None and svc.take_push("C") is None


def test_a_push_opens_with_the_connections_own_flush(svc: HubService) -> None:
    """Each push that opens hands back one Flush of its connection, without a catch-up (since
    session 13 the connection's own, made when it connected); none while one is pending,
    none to a connection that left (its Flush is forgotten with it)."""
    for c in ("B", "C"):
        svc.handle_sync(c, frame("evt.sub#1", {"rev": Z, "tops": ["prod.cat"]}))

    def flushes(outs: list[Out]) -> list[Flush]:
        return [o for o in outs if isinstance(o, Flush)]

    first = flushes(svc.handle_sync("A", frame("evt.pub#2", {"acts": [new("1", "a")]})))
    assert sorted(f.conn for f in first) == ["B", "C"]  # type: ignore[type-var]
    assert all(f.catch_up is None for f in first)
    # B's push is still pending: only C's opens again
    assert svc.take_push("C") is not None
    again = flushes(svc.handle_sync("A", frame("evt.pub#3", {"acts": [new("2", "b")]})))
    assert [f.conn for f in again] == ["C"]
    assert again[0] == Flush("C") and again[0].catch_up is None
    assert svc.take_push("B") is not None and svc.take_push("C") is not None
    svc.disconnect("B")
    assert "B" not in svc._flushes
    last = flushes(svc.handle_sync("A", frame("evt.pub#4", {"acts": [new("3", "c")]})))
    assert [f.conn for f in last] == ["C"]


def test_push_frames_are_shared_only_when_identical(prod: Project, clock: Clock) -> None:
    """A push frame is encoded once per fan-out and reused for subscribers that get exactly
    the same (same events, same revision, audits or not); others get their own frame."""
    svc = HubService(MemLedger(prod), clock)
    for c in ("P", "S1", "S2", "T", "U", "V"):
        svc.connect(c, f"user{c}")
    for c in ("S1", "S2"):
        svc.handle_sync(c, frame("evt.sub#1", {"rev": Z, "tops": ["prod.cat"]}))
    svc.handle_sync("T", frame("evt.sub#1", {"rev": Z, "tops": ["prod.cat", "prod.prod"]}))
    svc.handle_sync("U", frame("evt.sub#1", {"rev": Z, "tops": ["prod.prod"]}))
    svc.handle_sync("V", frame("evt.sat#1", {"rev": Z, "tops": ["prod.cat"], "audits": True}))
    outs = svc.handle_sync("P", frame("evt.pub#2", {"acts": [
        new("1", "a"), {"top": "prod.prod", "key": "9", "cmd": "new", "arg": {"name": "p"}}]}))
    texts = {c: svc.take_push(c) for c in ("S1", "S2", "T", "U", "V")}
    assert sum(isinstance(o, Flush) for o in outs) == 5
    assert texts["S1"] is texts["S2"]  # the same frame object: encoded once
    keys = {c: [e["key"] for e in orjson.loads(t.split("\n", 1)[1])["evs"]]
            for c, t in texts.items() if t is not None}
    assert keys == {"S1": ["1"], "S2": ["1"], "T": ["1", "9"], "U": ["9"], "V": ["1"]}
    v = orjson.loads(texts["V"].split("\n", 1)[1])  # type: ignore[union-attr]
    assert [a["usr"] for a in v["audits"]] == ["userP"]
    assert "audits" not in orjson.loads(texts["S1"].split("\n", 1)[1])  # type: ignore[union-attr]
    # a later fan-out of other events is a new frame
    svc.handle_sync("P", frame("evt.pub#3", {"acts": [new("2", "b")]}))
    later = svc.take_push("S1")
    assert later is not None and later != texts["S1"] and '"key":"2"' in later


def test_sub_catch_up_and_no_new_subscriptions(svc: HubService) -> None:
    svc.handle_sync("A", frame("evt.pub", {"acts": [new("1", "a"), new("5", "p", "prod.prod")]}))
    (r,) = svc.handle_sync("C", frame("evt.sub#7", {"rev": Z, "tops": ["prod.cat"]}))
    res = body(r)["res"]
    assert [e["top"] for e in res["evs"]] == ["prod.cat"]
    (r,) = svc.handle_sync("C", frame("evt.sub#8", {"rev": Z, "tops": ["prod.cat"]}))
    assert body(r) == {"err": "no new subscriptions"}
    (r,) = svc.handle_sync("C", frame("evt.sub#9", {"rev": Z, "tops": ["prod.prod"]}))
    assert [e["key"] for e in body(r)["res"]["evs"]] == ["5"]


def test_sub_catch_up_is_a_bounded_reply_then_pushes_in_order(prod: Project,
                                                               clock: Clock) -> None:
    """daql's hub answers evt.sub with every event since rev in one frame. Ours answers
    with the first max_batch (whole revisions) and pushes the rest up to the watermark in
    batches, before any later push; nothing lost, nothing twice; unsub and evt.sat stop it."""
    svc = HubService(MemLedger(prod), clock, Limits(max_batch=7))
    svc.BACKLOG_BATCH = 5
    svc.connect("A", "ann")
    svc.connect("C", "cid")
    for i in range(1, 31):  # 30 revisions of 2 events: batches never cut one
        svc.handle_sync("A", frame("evt.pub", {"acts": [new(str(i), "a"),
                                                        new(str(i), "p", "prod.prod")]}))
    outs = svc.handle_sync("C", frame("evt.sub#1", {"rev": Z, "tops": [
        "prod.cat", "prod.prod"]}))
    r = outs[0]
    assert isinstance(outs[-1], Flush) and outs[-1].catch_up is not None  # the rest
    res = body(r)["res"]
    assert 7 <= len(res["evs"]) <= 8 and len(res["evs"]) % 2 == 0
    assert res["rev"] == res["evs"][-1]["rev"]  # not caught up yet: the rev it has
    got = list(res["evs"])
    live = svc.handle_sync("A", frame("evt.pub", {"acts": [new("99", "late")]}))
    assert any(isinstance(o, Flush) and o.conn == "C" for o in live) or svc.pending("C")
    revs = [res["rev"]]
    for text in drain(svc, "C", outs[1:] + live):
        up = orjson.loads(text.split("\n", 1)[1])
        assert len(up["evs"]) <= 6
        got += up["evs"]
        revs.append(up["rev"])
    assert [e["id"] for e in got] == list(range(1, 62))  # 60 old + the late one, in order
    revs_ms = [parse_rev(r) for r in revs]
    assert revs_ms == sorted(revs_ms) and revs[-1] == got[-1]["rev"]

    # an unsub of every topic of the catch-up stops it; evt.sat drops it
    for stop in ("evt.unsub", "evt.sat"):
        svc.connect("D", "dee")
        svc.handle_sync("D", frame("evt.sub#1", {"rev": Z, "tops": ["prod.cat"]}))
        bl = svc.backlog("D")
        assert bl is not None
        if stop == "evt.unsub":
            svc.handle_sync("D", frame("evt.unsub#2", {"tops": ["prod.cat"]}))
            assert svc.backlog("D") is None
        else:
            # a daql client's evt.sat (no audits): the reply is cut (more), and the rest
            # of its own catch-up follows as pushes (session 12); the evt.sub's is gone
            outs = svc.handle_sync("D", frame("evt.sat#2", sat_body(rev=res["rev"])))
            assert len(body(outs[0])["res"]["evs"]) < 30 and "more" not in body(outs[0])["res"]
            now = svc.backlog("D")
            assert now is not None and now[0] is not bl[0] and now[0].seq > bl[0].seq
            assert isinstance(outs[-1], Flush) and outs[-1].catch_up is now[0]
            # an Outpost satellite's (audits): it asks again itself, nothing queued
            svc.handle_sync("D", frame("evt.sat#3", sat_body(rev=res["rev"], audits=True)))
            assert svc.backlog("D") is None
        svc.disconnect("D")


def test_unsub_stops_pushes(svc: HubService) -> None:
    svc.handle_sync("B", frame("evt.sub", {"rev": Z, "tops": ["prod.cat", "prod.prod"]}))
    (r,) = svc.handle_sync("B", frame("evt.unsub#2", {"tops": ["prod.cat"]}))
    assert body(r) == {"res": True}
    outs = svc.handle_sync("A", frame("evt.pub", {"acts": [new("1", "a")]}))
    assert push_of(svc, outs, "B") is None
    outs = svc.handle_sync("A", frame("evt.pub", {"acts": [new("2", "b", "prod.prod")]}))
    assert push_of(svc, outs, "B")["evs"][0]["key"] == "2"


def test_monitor_new_key_and_note_names_real_key(svc: HubService) -> None:
    svc.handle_sync("A", frame("evt.pub", {"acts": [new("1", "a")]}))
    (r,) = svc.handle_sync("B", frame("evt.mon#2", {"rev": Z, "watch": [
        {"top": "prod.cat", "keys": ["1"]}, {"top": "prod.prod", "keys": ["new"]}]}))
    mon = body(r)["res"]
    assert isinstance(mon, int) and mon >= 1
    assert svc.take_push("B") is None  # a zero rev: no catch-up (as daql)
    outs = svc.handle_sync("A", frame("evt.pub", {"acts": [
        {"top": "prod.cat", "key": "1", "cmd": "mod", "arg": {"name": "b"}},
        new("25", "Y", "prod.prod")]}))
    p = push_of(svc, outs, "B")
    assert "evs" not in p  # monitor only, no topic subscription
    assert p["note"] == [{"mon": mon, "watch": [{"top": "prod.cat", "keys": ["1"]},
                                                 {"top": "prod.prod", "keys": ["25"]}]}]
    (r,) = svc.handle_sync("B", frame("evt.unmon#3", {"mon": mon}))
    assert body(r) == {"res": True}
    (r,) = svc.handle_sync("B", frame("evt.unmon#4", {"mon": mon}))
    assert body(r) == {"res": False}
    outs = svc.handle_sync("A", frame("evt.pub", {"acts": [new("26", "Z", "prod.prod")]}))
    assert push_of(svc, outs, "B") is None


def test_mon_catch_up_note_for_changes_after_rev(svc: HubService) -> None:
    svc.handle_sync("A", frame("evt.pub", {"acts": [new("1", "a")]}))
    outs = svc.handle_sync("B", frame("evt.mon#1", {"rev": "2000-01-01T00:00:00Z",
                                                    "watch": [{"top": "prod.cat",
                                                               "keys": ["1"]}]}))
    reply, push = outs  # the monitor's id, then the note (the catch-up, read at once)
    mon = body(reply)["res"]
    assert isinstance(push, Send) and push.text.startswith("evt.update\n")
    assert orjson.loads(push.text.split("\n", 1)[1])["note"] == [
        {"mon": mon, "watch": [{"top": "prod.cat", "keys": ["1"]}]}]


def test_pub_errors_keep_daql_wording(svc: HubService) -> None:
    (r,) = svc.handle_sync("A", frame("evt.pub#9", {"acts": []}))
    assert body(r)["err"].startswith("no actions")
    (r,) = svc.handle_sync("A", frame("evt.pub#10", {"acts": [
        {"top": "prod.nope", "key": "1", "cmd": "new"}]}))
    assert "no model found for topic 'prod.nope'" in body(r)["err"]
    (r,) = svc.handle_sync("A", frame("evt.pub#11", {"acts": [
        {"top": "prod.cat", "key": "99", "cmd": "del"}]}))
    assert "no such record" in body(r)["err"]
    (r,) = svc.handle_sync("A", "evt.pub#13\nnot json")
    assert body(r)["err"].startswith("invalid JSON body")
    (r,) = svc.handle_sync("A", "evt.sub#14")
    assert "missing JSON body" in body(r)["err"]


def test_pub_conflict_reply_has_conflicts(svc: HubService) -> None:
    (r,) = svc.handle_sync("A", frame("evt.pub#1", {"acts": [new("1", "a")]}))
    base = body(r)["res"]["rev"]
    svc.handle_sync("B", frame("evt.pub#1", {"base": base, "acts": [
        {"top": "prod.cat", "key": "1", "cmd": "mod", "arg": {"name": "theirs"}}]}))
    (r,) = svc.handle_sync("A", frame("evt.pub#2", {"base": base, "acts": [
        {"top": "prod.cat", "key": "1", "cmd": "mod", "arg": {"name": "mine"}}]}))
    b = body(r)
    assert b["err"].startswith("conflict")
    (c,) = b["conflicts"]
    assert c["fields"] == ["name"] and c["theirs"] == {"name": "theirs"} and c["usr"] == "userB"


def test_usr_is_connection_user_not_the_sent_one(svc: HubService) -> None:
    (r,) = svc.handle_sync("A", frame("evt.pub#1", {"usr": "mallory", "acts": [new("1", "a")]}))
    rev = body(r)["res"]["rev"]
    (r,) = svc.handle_sync("A", frame("evt.hist#2", {"top": "prod.cat", "key": "1"}))
    assert body(r)["res"] == [{"rev": rev, "usr": "userA", "cmd": "new", "arg": {"name": "a"}}]


def test_reader_cannot_publish(svc: HubService) -> None:
    (r,) = svc.handle_sync("R", frame("evt.pub#1", {"acts": [new("1", "a")]}))
    assert "reader and cannot publish" in body(r)["err"]
    outs = svc.handle_sync("R", frame("evt.sat#2", {"rev": Z, "tops": ["prod.cat"], "trans": [
        {"uid": "u1", "acts": [new("1", "a")]}]}))
    # not a reject per transaction (a conflict the user could not resolve): one error reply,
    # so the edits stay pending on the satellite
    (r,) = outs
    assert body(r) == {"err": "user 'userR' may only read: ask the hub operator for a writer "
                              "token; the hub stored none of these edits", "code": "readonly"}
    assert svc.ledger.rev() == 0
    # without transactions a reader syncs as usual
    (r,) = svc.handle_sync("R", frame("evt.sat#3", {"rev": Z, "tops": ["prod.cat"],
                                                    "trans": []}))
    assert "res" in body(r)


def test_sat_publishes_each_on_its_own_with_acks_rejects_and_exactly_once(
        svc: HubService) -> None:
    svc.handle_sync("A", frame("evt.pub", {"acts": [new("1", "a")]}))
    sat = {"rev": Z, "tops": ["prod.cat"], "trans": [
        {"uid": "u1", "acts": [new("7", "sat")]},
        {"uid": "u2", "acts": [new("1", "dup key")]},      # rejected
        {"uid": "u3", "acts": [new("8", "after the reject")]}]}
    outs = svc.handle_sync("C", frame("evt.sat#1", sat))
    res = body(outs[0])["res"]
    assert [a["uid"] for a in res["acks"]] == ["u1", "u3"]
    assert [x["uid"] for x in res["rejects"]] == ["u2"]
    assert "created" in res["rejects"][0]["err"]  # new on a key made after its base
    assert [e["key"] for e in res["evs"]] == ["1", "7", "8"]  # its own events included
    assert res["rev"] == format_rev(svc.ledger.rev())
    # resend (lost reply): exactly once, acked with the original revisions
    outs = svc.handle_sync("C", frame("evt.sat#2", {**sat, "rev": res["rev"]}))
    res2 = body(outs[0])["res"]
    assert res2["acks"] == res["acks"]
    assert "evs" not in res2
    assert len(svc.ledger.events(0)) == 3


def test_sat_pushes_go_to_others_and_not_back(svc: HubService) -> None:
    svc.handle_sync("B", frame("evt.sub", {"rev": Z, "tops": ["prod.cat"]}))
    outs = svc.handle_sync("C", frame("evt.sat#1", {"rev": Z, "tops": ["prod.cat"], "trans": [
        {"uid": "u1", "acts": [new("7", "sat")]}]}))
    assert push_of(svc, outs, "B")["evs"][0]["key"] == "7"
    assert push_of(svc, outs, "C") is None
    outs = svc.handle_sync("A", frame("evt.pub", {"acts": [new("9", "x")]}))
    assert push_of(svc, outs, "C")["evs"][0]["key"] == "9"


def test_sat_lim_batches_never_cut_a_revision_and_pushes_wait(svc: HubService) -> None:
    for i in range(10):
        svc.handle_sync("A", frame("evt.pub", {"acts": [new(str(i * 2), "x"),
                                                        new(str(i * 2 + 1), "y")]}))
    rev, seen, rounds = Z, [], 0
    while rounds < 20:
        rounds += 1
        outs = svc.handle_sync("C", frame("evt.sat#1", {"rev": rev, "tops": ["prod.cat"],
                                                        "trans": [], "lim": 3}))
        res = body(outs[0])["res"]
        evs = res.get("evs", [])
        for r in {e["rev"] for e in evs}:  # whole revisions only
            whole = [e for e in svc.ledger.events(0) if format_rev(e.rev) == r]
            assert len(whole) == sum(e["rev"] == r for e in evs)
        seen += [e["key"] for e in evs]
        rev = res["rev"]
        if res.get("more"):
            # no pushes while catching up
            o2 = svc.handle_sync("A", frame("evt.pub", {"acts": [new(str(1000 + rounds), "z")]}))
            assert push_of(svc, o2, "C") is None
            continue
        break
    assert rounds > 2
    assert seen == [e.key for e in svc.ledger.events(0)]  # nothing lost, nothing twice
    outs = svc.handle_sync("A", frame("evt.pub", {"acts": [new("999", "z")]}))
    assert push_of(svc, outs, "C")["evs"][0]["key"] == "999"


def test_group_commit_finish_order_no_gap_no_dup(svc: HubService) -> None:
    """A commit durable but not finished when a sub arrives is pushed later, exactly once."""
    outs, job = svc.handle("A", frame("evt.pub#1", {"acts": [new("1", "a")]}))
    assert outs == [] and job is not None
    results = svc.run_job(job)  # durable, not yet finished
    (r,) = svc.handle_sync("B", frame("evt.sub#1", {"rev": Z, "tops": ["prod.cat"]}))
    assert body(r) == {"res": None}  # not fanned out yet: not in the reply
    outs = svc.finish(job, results)
    assert body(outs[0])["res"]["evs"][0]["key"] == "1"
    assert push_of(svc, outs, "B")["evs"][0]["key"] == "1"


def test_unknown_subject_and_fatal_frames(svc: HubService) -> None:
    (r,) = svc.handle_sync("A", "evt.nope#15\n{}")
    assert "unknown subject 'evt.nope'" in body(r)["err"] and "evt.pub" in body(r)["err"]
    assert svc.handle_sync("A", "evt.nope\n{}") == []
    for bad in ("_intern#1", "\n{}", "#1\n{}", b"\xff\xfe"):
        (c,) = svc.handle_sync("A", bad)
        assert isinstance(c, Close) and c.code == CLOSE_PROTOCOL


def test_dom_project_rebuilds_the_schema(svc: HubService) -> None:
    from core.schema import parse_project

    (r,) = svc.handle_sync("A", "dom.project#1")
    res = body(r)["res"]
    p = parse_project(res)
    assert p.topics == svc.ledger.project.topics
    assert res["project"]["mig"] == svc.ledger.project.version == p.version


def test_rate_limit_closes(prod: Project) -> None:
    clock = Clock(step=0)  # time stands still: only the burst is available
    s = HubService(MemLedger(prod), clock, Limits(rate=10, burst=5))
    s.connect("A", "a")
    outs = [s.handle_sync("A", "evt.stat#1") for _ in range(6)]
    assert all(isinstance(o[0], Send) for o in outs[:5])
    assert isinstance(outs[5][0], Close) and outs[5][0].code == CLOSE_POLICY
    clock.now += 1000  # a second later the bucket has refilled
    assert isinstance(s.handle_sync("A", "evt.stat#1")[0], Send)


def test_rate_limit_refills_at_the_rate_up_to_the_burst(prod: Project) -> None:
    """The token bucket (its numbers taken from the limits once): refilled by ``rate``
    per second of the clock, never above ``burst``; a rate-limited message takes no token."""
    clock = Clock(step=0)
    s = HubService(MemLedger(prod), clock, Limits(rate=10, burst=5))
    s.connect("A", "a")

    def served(n: int) -> list[bool]:
        return [isinstance(s.handle_sync("A", "evt.stat#1")[0], Send) for _ in range(n)]

    assert served(6) == [True] * 5 + [False]  # the burst, then closed
    clock.now += 250  # 2.5 tokens
    assert served(3) == [True, True, False]
    clock.now += 60_000  # 600 tokens' worth: capped at the burst
    assert served(6) == [True] * 5 + [False]
    s.limits = Limits(rate=1000, burst=2)  # limits replaced: the bucket follows them
    clock.now += 1
    assert served(2) == [True, False]
    clock.now += 10_000
    assert served(3) == [True, True, False]


def test_a_revision_fanned_out_already_is_not_again(svc: HubService) -> None:
    """``published`` with one event (the common case, not filtered) and with several: what
    was fanned out before is dropped, nothing is pushed twice and the revision stays."""
    svc.handle_sync("B", frame("evt.sub", {"rev": Z, "tops": ["prod.cat"]}))
    outs = svc.handle_sync("A", frame("evt.pub", {"acts": [new("1", "a")]}))
    assert push_of(svc, outs, "B") is not None
    (ev,) = svc.ledger.events(ZERO_REV)
    rev, recent = svc.rev, len(svc._recent)
    assert svc.catch_up([ev]) == [] and svc.published((ev,)) == []
    assert svc.catch_up([ev, ev]) == []
    assert (svc.rev, len(svc._recent)) == (rev, recent)
    assert svc.take_push("B") is None


def test_slow_subscriber_is_closed_and_memory_bounded(prod: Project, clock: Clock) -> None:
    s = HubService(MemLedger(prod), clock, Limits(max_pending=10))
    s.connect("A", "a")
    s.connect("B", "b")
    s.handle_sync("B", frame("evt.sub", {"rev": Z, "tops": ["prod.cat"]}))
    closed = []
    for i in range(20):
        outs = s.handle_sync("A", frame("evt.pub", {"acts": [new(str(i), "x")]}))
        closed += [o for o in outs if isinstance(o, Close)]
        assert s.pending("B") <= 10
    assert closed and closed[0].conn == "B" and closed[0].code == CLOSE_TOO_SLOW


def test_disconnect_cleans_up(svc: HubService) -> None:
    svc.handle_sync("B", frame("evt.sub", {"rev": Z, "tops": ["prod.cat"]}))
    svc.handle_sync("B", frame("evt.mon", {"rev": Z, "watch": [{"top": "prod.cat",
                                                               "keys": ["new"]}]}))
    svc.disconnect("B")
    assert "B" not in svc.subs
    outs = svc.handle_sync("A", frame("evt.pub", {"acts": [new("1", "a")]}))
    assert [o for o in outs if o.conn == "B"] == []
    (c,) = svc.handle_sync("B", "evt.stat#1")
    assert isinstance(c, Close)


def test_limits_on_acts_and_topics(prod: Project, clock: Clock) -> None:
    s = HubService(MemLedger(prod), clock, Limits(max_acts=2, max_tops=1))
    s.connect("A", "a")
    (r,) = s.handle_sync("A", frame("evt.pub#1", {"acts": [new(str(i), "x") for i in range(3)]}))
    assert "limit is 2" in body(r)["err"]
    (r,) = s.handle_sync("A", frame("evt.sub#1", {"rev": Z, "tops": ["prod.cat", "prod.prod"]}))
    assert "limit is 1" in body(r)["err"]
    (r,) = s.handle_sync("A", frame("evt.sub#1", {"rev": Z, "tops": ["prod.nah"]}))
    assert "no model found" in body(r)["err"]


# -- failures that are not a verdict on the transactions ------------------------------------------


class FlakyLedger(MemLedger):
    """A MemLedger whose reads fail with a StorageError while ``broken`` (disk, server gone)."""

    broken = False

    def _check(self) -> None:
        if self.broken:
            raise StorageError("reading events failed on hub.db: disk I/O error: retry")

    def events(self, rev: Rev, tops: Iterable[str] | None = None, limit: int = 0,
               max_bytes: int = 0) -> list[Event]:
        self._check()
        return super().events(rev, tops, limit, max_bytes)

    def audits(self, lo: Rev, hi: Rev) -> list[Audit]:
        self._check()
        return super().audits(lo, hi)

    def audits_at(self, revs: Sequence[Rev]) -> list[Audit]:
        self._check()
        return super().audits_at(revs)

    def history(self, top: str, key: str) -> list[HistoryEntry]:
        self._check()
        return super().history(top, key)


@pytest.fixture
def flaky(prod: Project, clock: Clock) -> HubService:
    s = HubService(FlakyLedger(prod), clock)
    for c in ("A", "C"):
        s.connect(c, f"user{c}", "writer")
    return s


def assert_read_failed(b: dict[str, Any], subj: str) -> None:
    """The error reply of a failed read (hubserver.satreply.read_failed): the same shape on
    every path, nothing of the hub's storage (path, driver message, operator's hint)."""
    assert b["code"] == "read", b
    assert b["err"].startswith(f"{subj}: the hub could not read its ledger to answer"), b
    for leak in ("hub.db", "disk I/O", "nothing was applied", "check the disk"):
        assert leak not in b["err"], b


def other_hub_publishes(led: MemLedger) -> None:
    """A publish through another hub on the same database (a topic the tests' clients do
    not subscribe to): this hub's next fan-out first reads it from the ledger (ids are
    dense)."""
    led.publish(Trans((Action("prod.label", "9", Cmd.NEW, {"name": "other"}),)), "bob")


def sat_body(*trans: dict[str, Any], rev: str = Z, **kw: Any) -> dict[str, Any]:
    return {"rev": rev, "tops": ["prod.cat"], "trans": list(trans), **kw}


def test_sat_bug_in_publish_is_one_error_reply_and_edits_stay_pending(
        svc: HubService, caplog: pytest.LogCaptureFixture) -> None:
    svc.handle_sync("C", frame("evt.sat#1", sat_body()))  # C subscribed, live
    t1, t2 = {"uid": "u1", "acts": [new("1", "a")]}, {"uid": "u2", "acts": [new("2", "b")]}
    outs, job = svc.handle("C", frame("evt.sat#2", sat_body(t1, t2)))
    assert outs == [] and job is not None
    # the first one committed, then the ledger hit a bug on the second (not a verdict on it)
    results = [*svc.ledger.publish_many(job.items[:1]), RuntimeError("a hub bug")]
    with caplog.at_level(logging.ERROR, "outpost.hub"):
        outs = svc.finish(job, results)
    reply = body(outs[0])
    assert "res" not in reply  # no rejects: the satellite keeps both pending
    assert "internal error" in reply["err"] and "RuntimeError" in reply["err"]
    assert "stay pending" in reply["err"]
    assert any(r.exc_info and "a hub bug" in str(r.exc_info[1]) for r in caplog.records)
    # no reply carries u1's event: it is pushed, so C's revision never skips it
    assert [e["key"] for e in push_of(svc, outs, "C")["evs"]] == ["1"]
    # the resend: u1 acked once (original rev), u2 applied
    (r,) = svc.handle_sync("C", frame("evt.sat#3", sat_body(t1, t2)))
    res = body(r)["res"]
    assert [a["uid"] for a in res["acks"]] == ["u1", "u2"] and "rejects" not in res
    assert len(svc.ledger.events(0)) == 2


def test_sat_storage_error_of_the_commit_is_one_error_reply(svc: HubService) -> None:
    _outs, job = svc.handle("C", frame("evt.sat#1", sat_body({"uid": "u1",
                                                              "acts": [new("1", "a")]})))
    assert job is not None
    (r,) = svc.finish(job, [StorageError("disk full", kind="full")])
    # the cause (a path, a URL, a driver message) stays in the hub's log
    assert body(r) == {"err": "the hub could not store the transactions: the hub's database "
                              "is unavailable (the disk is full; the cause is in the hub's "
                              "log); they stay pending on the satellite and are sent again"}


def test_storage_errors_reading_get_error_replies_not_a_closed_connection(
        flaky: HubService) -> None:
    led = flaky.ledger
    assert isinstance(led, FlakyLedger)
    flaky.handle_sync("A", frame("evt.pub", {"acts": [new("1", "a")]}))
    # a restarted hub: the event is only in the ledger (not among the recent events an
    # evt.sat reply is built from without reading)
    flaky = HubService(led, flaky.clock)
    flaky.connect("C", "userC", "writer")
    led.broken = True
    for req in (frame("evt.sub#1", {"rev": Z, "tops": ["prod.cat"]}),
                frame("evt.mon#2", {"rev": "2000-01-01T00:00:00Z",
                                    "watch": [{"top": "prod.cat", "keys": ["1"]}]}),
                frame("evt.hist#3", {"top": "prod.cat", "key": "1"}),
                frame("evt.sat#4", sat_body(audits=True))):
        (r,) = flaky.handle_sync("C", req)
        assert isinstance(r, Send), r
        assert_read_failed(body(r), req.partition("#")[0])
    # nothing half done: the subscription and the monitor were not left behind
    sub = flaky.subs.get("C")
    assert not sub.tops and not sub.monitors
    led.broken = False
    (r,) = flaky.handle_sync("C", frame("evt.sub#5", {"rev": Z, "tops": ["prod.cat"]}))
    assert [e["key"] for e in body(r)["res"]["evs"]] == ["1"]


def test_storage_error_while_answering_a_publish_still_replies(flaky: HubService) -> None:
    """The commit is durable; reading the reply (audits) fails: an error reply, not silence."""
    led = flaky.ledger
    assert isinstance(led, FlakyLedger)
    flaky.handle_sync("C", frame("evt.sat#1", sat_body(audits=True)))
    sat = sat_body({"uid": "u1", "acts": [new("1", "a")]}, audits=True)
    outs, job = flaky.handle("C", frame("evt.sat#2", sat))
    assert job is not None
    other_hub_publishes(led)  # a gap in the event ids: fanning out reads the ledger
    results = flaky.run_job(job)
    led.broken = True
    outs = flaky.finish(job, results)
    (r,) = [o for o in outs if isinstance(o, Send)]
    # published before the read failed: acked in the error reply, never sent again
    assert_read_failed(body(r), "evt.sat")
    assert [a["uid"] for a in body(r)["acks"]] == ["u1"]
    assert "1 of the request's transactions were stored" in body(r)["err"]
    led.broken = False
    (r,) = flaky.handle_sync("C", frame("evt.sat#3", sat))  # the resend is acked, once
    assert [a["uid"] for a in body(r)["res"]["acks"]] == ["u1"]
    assert len(led.events(0, ["prod.cat"])) == 1


def test_pub_answers_a_resent_uid_a_gone_publisher_and_a_failed_fanout_read(
        flaky: HubService) -> None:
    """The one-transaction evt.pub answer (HubService._pub_done): a resend of an applied uid
    gets the first publish's revision and no second push; a publisher that left gets
    nothing while the others still get the push; a ledger read failing while fanning out
    (the events another hub published meanwhile are read first) is an error reply."""
    led = flaky.ledger
    assert isinstance(led, FlakyLedger)
    flaky.handle_sync("C", frame("evt.sub#1", {"rev": Z, "tops": ["prod.cat"]}))
    led.broken = True
    outs, job = flaky.handle("A", frame("evt.pub#1", {"uid": "u1", "acts": [new("1", "a")]}))
    assert job is not None
    led.broken = False
    other_hub_publishes(led)
    results = flaky.run_job(job)
    led.broken = True
    (r,) = flaky.finish(job, results)
    assert_read_failed(body(r), "evt.pub")
    first = results[0]
    assert not isinstance(first, Exception)
    assert f"stored at revision {format_rev(first.rev)}" in body(r)["err"]
    led.broken = False
    outs = flaky.handle_sync("A", frame("evt.pub#2", {"uid": "u1", "acts": [new("1", "a")]}))
    first = results[0]
    assert not isinstance(first, Exception)
    assert body(outs[0])["res"]["rev"] == format_rev(first.rev)
    pushed = push_of(flaky, outs, "C")  # the failed answer's fan-out came with the resend
    assert pushed is not None and [e["key"] for e in pushed["evs"]] == ["1"]
    outs = flaky.handle_sync("A", frame("evt.pub#3", {"uid": "u1", "acts": [new("1", "a")]}))
    assert len(outs) == 1 and body(outs[0])["res"]["rev"] == format_rev(first.rev)
    _, job = flaky.handle("A", frame("evt.pub#4", {"acts": [new("2", "b")]}))
    assert job is not None
    results = flaky.run_job(job)
    flaky.disconnect("A")
    outs = flaky.finish(job, results)
    assert not [o for o in outs if isinstance(o, Send)]
    assert push_of(flaky, outs, "C")["evs"][0]["key"] == "2"  # type: ignore[index]


# -- bounds ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("lim", [0, 1000])
def test_sat_reply_is_capped_whatever_lim_the_client_asks(prod: Project, clock: Clock,
                                                          lim: int) -> None:
    s = HubService(MemLedger(prod), clock, Limits(max_batch=3))
    s.connect("A", "a")
    s.connect("C", "c")
    for i in range(10):
        s.handle_sync("A", frame("evt.pub", {"acts": [new(str(i), "x")]}))
    rev, seen, rounds = Z, [], 0
    while True:
        rounds += 1
        # audits: an Outpost satellite's (a daql client's gets the rest pushed instead:
        # tests/hub/test_daql_behind.py)
        (r,) = s.handle_sync("C", frame("evt.sat#1", sat_body(rev=rev, lim=lim, audits=True)))
        res = body(r)["res"]
        assert len(res.get("evs", [])) <= 3
        seen += [e["key"] for e in res.get("evs", [])]
        rev = res["rev"]
        if not res.get("more"):
            break
    assert rounds == 4 and seen == [str(i) for i in range(10)]


# -- monitor notes and evt.sat ---------------------------------------------------------------------


def test_notes_pending_when_a_sat_reply_goes_out_are_still_pushed(svc: HubService) -> None:
    svc.handle_sync("C", frame("evt.sat#1", sat_body()))
    (r,) = svc.handle_sync("C", frame("evt.mon#2", {"watch": [{"top": "prod.cat",
                                                              "keys": ["1"]}]}))
    mon = body(r)["res"]
    outs = svc.handle_sync("A", frame("evt.pub", {"acts": [new("1", "a")]}))
    assert [o for o in outs if isinstance(o, Flush) and o.conn == "C"]  # push on its way
    # before C's push is written, C syncs again: the reply has the event ...
    (r,) = svc.handle_sync("C", frame("evt.sat#3", sat_body()))
    assert [e["key"] for e in body(r)["res"]["evs"]] == ["1"]
    # ... and the push has the note, not the event a second time
    text = svc.take_push("C")
    assert text is not None
    p = orjson.loads(text.split("\n", 1)[1])
    assert "evs" not in p
    assert p["note"] == [{"mon": mon, "watch": [{"top": "prod.cat", "keys": ["1"]}]}]
    assert p["rev"] == Z  # claims no revision the client does not have yet


def test_sat_reply_has_every_audit_when_it_outgrows_the_audit_cache(svc: HubService) -> None:
    # found in review: audits read for a reply were put in the bounded cache and the reply
    # was built from the cache, so a catch-up over more revisions than it holds lost the
    # oldest audits, and the satellite's replica kept those events without their user
    svc.AUDIT_CACHE = 8  # type: ignore[misc]
    for i in range(30):
        svc.handle_sync("A", frame(f"evt.pub#{i}", {"acts": [new(str(i + 1), "x")]}))
    (r,) = svc.handle_sync("B", frame("evt.sat#1", {"rev": Z, "tops": ["prod.cat"],
                                                    "audits": True, "lim": 100}))
    res = body(r)["res"]
    assert len(res["evs"]) == 30
    assert sorted(a["rev"] for a in res["audits"]) == sorted({e["rev"] for e in res["evs"]})
    assert {a["usr"] for a in res["audits"]} == {"userA"}


def test_catch_up_replies_read_later_keep_what_was_asked(prod: Project, clock: Clock) -> None:
    """evt.sub and evt.mon read nothing when handled: the reply's batch is read where the
    catch-up is in the send order. An evt.unsub, evt.sat or evt.unmon handled before that
    leaves the reply as asked (daql answered before reading the next request) and stops
    what would follow it."""
    svc = HubService(MemLedger(prod), clock, Limits(max_batch=4))
    svc.connect("A", "ann")
    svc.connect("C", "cid")
    for i in range(1, 11):
        svc.handle_sync("A", frame("evt.pub", {"acts": [new(str(i), "a")]}))
    for stop in ("evt.unsub", "evt.sat", "evt.unmon"):
        if stop == "evt.unmon":
            outs, _ = svc.handle("C", frame("evt.mon#1", {"rev": "2000-01-01T00:00:00Z",
                                                          "watch": [{"top": "prod.cat",
                                                                     "keys": ["new"]}]}))
        else:
            outs, _ = svc.handle("C", frame("evt.sub#1", {"rev": Z, "tops": ["prod.cat"]}))
        (fl,) = outs
        assert isinstance(fl, Flush) and fl.catch_up is not None and fl.catch_up.reply
        if stop == "evt.unsub":
            (r,) = svc.handle_sync("C", frame("evt.unsub#2", {"tops": ["prod.cat"]}))
        elif stop == "evt.sat":
            (r,) = svc.handle_sync("C", frame("evt.sat#2", sat_body(rev=format_rev(
                svc.rev), tops=["prod.prod"])))
        else:
            (r,) = svc.handle_sync("C", frame("evt.unmon#2", {"mon": 1}))
        assert "res" in body(r)
        # the adapter's sender gets to the catch-up now: the reply only
        (reply,) = svc.catch_up_sync("C", fl.catch_up)
        if stop == "evt.unmon":
            assert body(reply) == {"res": 1}
        else:
            assert [e["key"] for e in body(reply)["res"]["evs"]] == ["1", "2", "3", "4"]
        assert svc.backlog("C") is None
        svc.disconnect("C")
        svc.connect("C", "cid")


def test_mon_catch_up_in_batches_notes_each_change_once(prod: Project, clock: Clock) -> None:
    svc = HubService(MemLedger(prod), clock, Limits(max_batch=3))
    svc.connect("A", "ann")
    svc.connect("B", "bob")
    for i in range(1, 11):  # keys 1..10 created, 4 modified twice, other topics between
        svc.handle_sync("A", frame("evt.pub", {"acts": [new(str(i), "a"),
                                                        new(str(i), "p", "prod.prod")]}))
    for _ in range(2):
        svc.handle_sync("A", frame("evt.pub", {"acts": [
            {"top": "prod.cat", "key": "4", "cmd": "mod", "arg": {"name": "b"}}]}))
    outs, _ = svc.handle("B", frame("evt.mon#1", {"rev": "2000-01-01T00:00:00Z", "watch": [
        {"top": "prod.cat", "keys": ["new", "4"]}]}))
    live = svc.handle_sync("A", frame("evt.pub", {"acts": [new("11", "late")]}))
    texts = drain(svc, "B", outs + live)
    assert texts[0] == 'evt.mon#1\n{"res":1}'
    notes = [orjson.loads(t.split("\n", 1)[1]) for t in texts[1:]]
    keys = [k for n in notes for k in n["note"][0]["watch"][0]["keys"]]
    # batches of 3 events: 1-3, 4-6, 7-9, then 10 and both mods of 4 (a note names a key
    # once); then the live one
    assert keys == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "4", "11"]
    assert len(notes) == 5
    revs = [parse_rev(n["rev"]) for n in notes]
    assert revs == sorted(revs)


def test_a_catch_up_behind_another_is_answered_after_it(prod: Project, clock: Clock) -> None:
    """evt.mon with a rev while the connection's evt.sub catch-up is still to push: the
    monitor's reply and notes come after that catch-up (handle_sync leaves it in its place:
    it returned nothing before, the reply was lost), and its notes claim the revision of the
    request, never one behind what the subscriber has."""
    svc = HubService(MemLedger(prod), clock, Limits(max_batch=3))
    svc.BACKLOG_BATCH = 2
    svc.connect("A", "ann")
    svc.connect("C", "cid")
    for i in range(1, 9):
        svc.handle_sync("A", frame("evt.pub", {"acts": [new(str(i), "a")]}))
    sub = svc.handle_sync("C", frame("evt.sub#1", {"rev": Z, "tops": ["prod.cat"]}))
    mon = svc.handle_sync("C", frame("evt.mon#2", {"rev": "2000-01-01T00:00:00Z", "watch": [
        {"top": "prod.cat", "keys": ["new"]}]}))
    (fl,) = mon
    assert isinstance(fl, Flush) and fl.catch_up is not None and fl.catch_up.reply
    texts = drain(svc, "C", sub + mon)
    heads = [t.split("\n", 1)[0] for t in texts]
    assert heads[0] == "evt.sub#1" and heads.index("evt.mon#2") == 4  # after 3 + 2 + 2 + 1
    bodies = [orjson.loads(t.split("\n", 1)[1]) for t in texts]
    keys = [e["key"] for b in bodies[:4] for e in (b.get("res") or b)["evs"]]
    assert keys == [str(i) for i in range(1, 9)]
    notes = [k for b in bodies[5:] for n in b["note"] for w in n["watch"] for k in w["keys"]]
    assert notes == [str(i) for i in range(1, 9)]
    last = (bodies[3].get("res") or bodies[3])["rev"]
    assert {b["rev"] for b in bodies[5:]} == {last}  # the revision the subscriber has


class _CountingLedger(SqlLedger):
    """A SQLite ledger that records the revisions ``events`` is asked to read after."""

    def __init__(self, url: str, project: Project):
        super().__init__(url, project)
        self.reads: list[Rev] = []

    def events(self, rev: Rev, tops: Iterable[str] | None = None,
               limit: int = 0, max_bytes: int = 0) -> list[Event]:
        self.reads.append(rev)
        return super().events(rev, tops, limit, max_bytes)


def _pub(i: int, top: str = "prod.cat") -> str:
    return frame(f"evt.pub#{i}", {"uid": f"u{i}", "acts": [new(str(i), f"n{i}", top)]})


def test_a_restarted_hubs_first_publish_reads_nothing_back(prod: Project,
                                                           tmp_path: Path) -> None:
    """The id of the ledger's last event is known from the start: the first publish after a
    start fans out without reading the ledger (it read its own events back to rule out a
    gap from other hubs: a replaying satellite's first reply waited for 1,000 of them)."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    first = SqlLedger(url, prod)
    try:
        s0 = HubService(first)
        s0.connect("A", "ann")
        for i in range(3):
            s0.handle_sync("A", _pub(i))
    finally:
        first.close()
    led = _CountingLedger(url, prod)
    try:
        svc = HubService(led)  # the hub restarted
        for c in ("A", "B"):
            svc.connect(c, "ann")
        svc.handle_sync("B", frame("evt.sub#1", {"rev": format_rev(led.rev()),
                                                 "tops": ["prod.cat"]}))
        led.reads.clear()
        outs = svc.handle_sync("A", _pub(3))
        assert led.reads == []
        assert [e["key"] for e in push_of(svc, outs, "B")["evs"]] == ["3"]
    finally:
        led.close()


def test_a_gap_right_after_a_restart_is_still_fetched(prod: Project, tmp_path: Path) -> None:
    """Another hub on the same database publishes between this hub's start and its first
    publish: its events are fanned out first (ids are dense), nothing is skipped."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    one, two = SqlLedger(url, prod), SqlLedger(url, prod)
    try:
        s2 = HubService(two)
        s2.connect("X", "bob")
        s2.handle_sync("X", _pub(0))
        svc = HubService(one)  # starts after event 1
        for c in ("A", "B"):
            svc.connect(c, "ann")
        svc.handle_sync("B", frame("evt.sub#1", {"rev": format_rev(one.rev()),
                                                 "tops": ["prod.cat"]}))
        s2.handle_sync("X", _pub(1))  # the other hub, after this one started
        outs = svc.handle_sync("A", _pub(2))
        assert [e["key"] for e in push_of(svc, outs, "B")["evs"]] == ["1", "2"]
    finally:
        one.close()
        two.close()
