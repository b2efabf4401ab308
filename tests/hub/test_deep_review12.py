"""Deeply nested JSON and int keys beyond 64 bits (session 12, reviewer "wire"), on the
in-process hub on real websockets with an SQLite ledger.

Before: a publish whose ``extra`` or ``json`` field value nested 256+ levels was stored (the
ledger writes with the stdlib's json) while every reply carrying it failed in orjson (255
levels): each satellite's catch-up, the publisher's reply and a daql client's ``evt.sub`` were
closed with 1011, for good. Now such a value is refused when it comes in (more than
MAX_NESTING levels), naming the field and the limit; ``verify`` names the ones stored before.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from core.ledger import ops
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import MAX_NESTING, Project, parse_project
from hubserver.server import Hub
from tests.support.fakedaql import FakeDaql

DOC = {"project": {"name": "j"},
       "doc": {"item": {"key": "int", "fields": {"name": {"type": "str"},
                                                 "data": {"type": "json"}}}}}


def deep(n: int) -> str:
    """JSON text of a list nesting ``n`` levels."""
    return "[" * n + "1" + "]" * n


async def raw(ws: ClientConnection, subj: str, tok: str, body: str) -> dict[str, Any]:
    """Send a request whose body is JSON text as given (orjson writes at most 255 levels) and
    return its reply's payload (pushes skipped)."""
    await ws.send(f"{subj}#{tok}\n{body}")
    for _ in range(100):
        head, _, payload = str(await asyncio.wait_for(ws.recv(), 10)).partition("\n")
        if head == f"{subj}#{tok}":
            out = orjson.loads(payload)
            assert isinstance(out, dict)
            return out
    raise AssertionError("no reply")


def pub(key: str, arg: str, extra: str = "") -> str:
    """An evt.pub body: one new doc.item ``key`` of ``arg`` (JSON text), maybe an extra."""
    return ('{"acts":[{"top":"doc.item","key":"' + key + '","cmd":"new","arg":' + arg + "}]"
            + (',"extra":' + extra if extra else "") + "}")


async def test_deep_values_are_refused_and_sync_goes_on(tmp_path: Path) -> None:
    proj = parse_project(DOC)
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", proj)
    try:
        async with Hub(led) as hub, connect(hub.url, max_size=None) as ws:
            # a transaction's extra, any schema: refused, naming extra and the limit
            err = (await raw(ws, "evt.pub", "1", pub("2", '{"name":"x"}',
                                                      '{"a":' + deep(600) + "}")))["err"]
            assert err.startswith("extra nests lists and objects more than 100 levels deep")
            assert "the limit is 100 levels" in err
            # a json field's value: refused, naming the record, the field and the limit
            err = (await raw(ws, "evt.pub", "2", pub("3", '{"name":"y","data":'
                                                      + deep(300) + "}")))["err"]
            assert err.startswith("new doc.item 3: field 'data' got a list nested more than "
                                  "100 levels deep, expected JSON nested at most 100 levels")
            # 256 levels: the first orjson cannot write (before: stored, then 1011 on reply)
            err = (await raw(ws, "evt.pub", "3", pub("4", '{"data":' + deep(256) + "}")))["err"]
            assert "field 'data'" in err
            # at the limit: taken, and the reply carries it
            res = (await raw(ws, "evt.pub", "4", pub("5", '{"data":'
                                                      + deep(MAX_NESTING) + "}")))["res"]
            assert res["evs"][0]["arg"]["data"] == json.loads(deep(MAX_NESTING))
            # an evt.sat: the deep transactions rejected one by one, the good one acked
            sat = ('{"rev":"","tops":["doc.item"],"audits":true,"trans":['
                   '{"uid":"u-ok","acts":[{"top":"doc.item","key":"6","cmd":"new",'
                   '"arg":{"name":"ok"}}]},'
                   '{"uid":"u-extra","extra":{"a":' + deep(400) + '},"acts":[{"top":'
                   '"doc.item","key":"7","cmd":"new","arg":{"name":"e"}}]},'
                   '{"uid":"u-data","acts":[{"top":"doc.item","key":"8","cmd":"new",'
                   '"arg":{"data":{"x":' + deep(200) + "}}}]}]}")
            got = (await raw(ws, "evt.sat", "5", sat))["res"]
            assert [a["uid"] for a in got["acks"]] == ["u-ok"]
            rejects = {r["uid"]: r["err"] for r in got["rejects"]}
            assert set(rejects) == {"u-extra", "u-data"}
            assert "extra nests" in rejects["u-extra"] and "100 levels" in rejects["u-extra"]
            assert "field 'data'" in rejects["u-data"]
            assert sorted(e["key"] for e in got["evs"]) == ["5", "6"]
        async with Hub(led) as hub, connect(hub.url, max_size=None) as ws:
            # a new replica's catch-up and a daql client's evt.sub: served, not closed
            got = (await raw(ws, "evt.sat", "1",
                             '{"rev":"","tops":["doc.item"],"audits":true}'))["res"]
            assert sorted(e["key"] for e in got["evs"]) == ["5", "6"]
        async with Hub(led) as hub, connect(hub.url, max_size=None) as ws:
            got = (await raw(ws, "evt.sub", "2", '{"rev":"","tops":["doc.item"]}'))["res"]
            assert len(got["evs"]) == 2
        assert ops.verify(led) == []
    finally:
        led.close()


def _poison(led: SqlLedger, proj: Project) -> int:
    """A ledger as a hub before session 12 left it: one event whose json field and one audit
    whose extra nest 300 levels (written as that hub did, with the stdlib's json)."""
    rev = led.publish(Trans((Action("doc.item", "1", Cmd.NEW, {"name": "a", "data": [1]}),),
                            extra={"a": 1}, uid="u1"), "ann").rev
    led.publish(Trans((Action("doc.item", "2", Cmd.NEW, {"name": "b"}),)), "ann")
    value = json.loads(deep(300))
    with led.engine.begin() as conn:
        conn.execute(text("UPDATE evt_event SET arg = :a WHERE key = '1'"),
                     {"a": json.dumps({"name": "a", "data": value})})
        conn.execute(text("UPDATE st_doc_item SET data = :d WHERE key = '1'"),
                     {"d": json.dumps(value)})
        conn.execute(text("UPDATE evt_audit SET extra = :x WHERE rev = :r"),
                     {"x": json.dumps({"a": value}), "r": rev})
    return rev


def test_verify_names_deep_values_stored_before(tmp_path: Path) -> None:
    proj = parse_project(DOC)
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", proj)
    try:
        _poison(led, proj)
        notes: list[str] = []
        problems = ops.verify(led, notes)
        assert len(problems) == 2 and notes == [], problems
        assert problems[0].startswith("event 1 (doc.item 1, revision ")
        assert "field 'data' nests lists and objects more than 249 levels deep: no reply " \
            "can carry it" in problems[0]
        assert problems[1].startswith("the audit of revision ")
        assert "(event 1): its extra nests lists and objects more than 249" in problems[1]
        for line in problems:
            assert "closed with 1011" in line and "docs/operations.md" in line
        assert led.verify() == []  # a restore's verify: not a difference (it restores)
    finally:
        led.close()


async def test_the_documented_repair_makes_the_ledger_served_again(tmp_path: Path) -> None:
    """docs/operations.md, "Values nested too deep": back up, flatten in the backup what
    verify names, restore into an empty database; every catch-up is served again."""
    proj = parse_project(DOC)
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", proj)
    try:
        _poison(led, proj)
        async with Hub(led) as hub, connect(hub.url, max_size=None) as ws:
            # what the reviewer saw: a new replica's catch-up is closed with 1011
            await ws.send('evt.sat#1\n{"rev":"","tops":["doc.item"],"audits":true}')
            try:
                await asyncio.wait_for(ws.recv(), 10)
                raise AssertionError("the reply could carry the deep value")
            except ConnectionClosed as exc:
                assert exc.rcvd is not None and exc.rcvd.code == 1011
        ops.backup(led, tmp_path / "deep.ledger")
    finally:
        led.close()
    # the two steps of the docs, as written there (event 1's field 'data'; event 1's audit)
    with sqlite3.connect(tmp_path / "deep.ledger") as db:
        db.execute("UPDATE evt_event SET arg = json_set(arg, '$.data', "
                   "json_extract(arg, '$.data') || '') WHERE id = 1")
        db.execute("UPDATE evt_audit SET extra = NULL WHERE rev = "
                   "(SELECT rev FROM evt_event WHERE id = 1)")
    db.close()
    fixed = ops.restore(tmp_path / "deep.ledger", f"sqlite:///{tmp_path / 'fixed.db'}", proj)
    try:
        notes: list[str] = []
        assert ops.verify(fixed, notes) == [] and notes == []
        async with Hub(fixed) as hub, connect(hub.url, max_size=None) as ws:
            got = (await raw(ws, "evt.sat", "1",
                             '{"rev":"","tops":["doc.item"],"audits":true}'))["res"]
            evs = {e["key"]: e["arg"] for e in got["evs"]}
            assert evs["1"] == {"name": "a", "data": deep(300)}  # its JSON text, a string
            assert evs["2"] == {"name": "b"}
            assert [a.get("extra") for a in got["audits"]] == [None, None]
    finally:
        fixed.close()


def test_verify_notes_values_past_the_limit_that_are_still_sent(tmp_path: Path) -> None:
    proj = parse_project(DOC)
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", proj)
    try:
        led.publish(Trans((Action("doc.item", "1", Cmd.NEW, {"data": [1]}),)), "ann")
        value = json.loads(deep(150))
        with led.engine.begin() as conn:
            conn.execute(text("UPDATE evt_event SET arg = :a"), {"a": json.dumps({"data": value})})
            conn.execute(text("UPDATE st_doc_item SET data = :d"), {"d": json.dumps(value)})
        notes: list[str] = []
        assert ops.verify(led, notes) == []
        assert len(notes) == 1 and notes[0].startswith("note: event 1 (doc.item 1, revision ")
        assert "field 'data' nests lists and objects 150 levels deep" in notes[0]
        assert "it is still sent, but the same value published again is refused" in notes[0]
        assert led.verify() == []  # a restore's verify: not a difference
    finally:
        led.close()


async def test_values_past_the_limit_stored_before_still_sync_and_restore(
        tmp_path: Path) -> None:
    """The limit is for what is published: a value a hub took before (150 levels, still
    sent) is taken by a restore under a new schema (which checks every event of the backup)
    and by a satellite's check of a daql hub's events (else its sync would stop for good)."""
    proj = parse_project(DOC)
    new = dict(DOC)
    new["doc"] = {"item": {"key": "int", "fields": {"name": {"type": "str"},
                                                    "data": {"type": "json"},
                                                    "note": {"type": "text"}}}}
    proj2 = parse_project(new)
    assert proj2.version != proj.version
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", proj)
    value = json.loads(deep(150))
    try:
        led.publish(Trans((Action("doc.item", "1", Cmd.NEW, {"data": [1]}),)), "ann")
        with led.engine.begin() as conn:
            conn.execute(text("UPDATE evt_event SET arg = :a"), {"a": json.dumps({"data": value})})
            conn.execute(text("UPDATE st_doc_item SET data = :d"), {"d": json.dumps(value)})
        ops.backup(led, tmp_path / "b.ledger")
    finally:
        led.close()
    restored = ops.restore(tmp_path / "b.ledger", f"sqlite:///{tmp_path / 'r.db'}", proj2)
    try:
        st = restored.state("doc.item", "1")
        assert st is not None and st["data"] == value
    finally:
        restored.close()
    # a daql hub (it serves no schema version: the satellite checks every event it sends)
    async with FakeDaql(set(proj.topics)) as daql:
        daql.publish([{"top": "doc.item", "key": "1", "cmd": "new", "arg": {"data": value}}])
        sat = Satellite(tmp_path / "sat", proj)
        try:
            await SyncClient(sat, daql.url, rnd=random.Random(0)).sync_once(10)
            rec = sat.record("doc.item", "1")
            assert rec is not None and rec.fields.get("data") == value
        finally:
            sat.close()
