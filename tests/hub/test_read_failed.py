"""A request the hub cannot answer because reading its ledger failed: one error reply on every
path (``code`` "read", nothing of the hub's storage in it), which says truthfully what was
stored: an ``evt.sat``'s transactions published before its read failed are acked (and
refused ones rejected) in it, so the satellite stores them, never sends them again, and
asks for the read again later. On a real SQLite ledger (a table gone under the hub: the
driver's own error) and through the real sync client."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from core.errors import StorageError
from core.ledger.sql import SqlLedger, open_ledger
from core.model import Action, Cmd, Event, Trans
from core.revision import Rev, format_rev
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient
from core.satellite.machine import Backoff
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver import satreply
from hubserver.limits import Limits
from hubserver.server import Hub
from hubserver.service import Flush, HubService, Send
from tests.hub.conftest import Clock

SITE = "field.site"
Z = "0001-01-01T00:00:00Z"


def seed(led: SqlLedger, n: int) -> None:
    """``n`` sites, one per revision, before any hub starts (older than its recent events)."""
    for i in range(n):
        led.publish(Trans((Action(SITE, f"s{i}", Cmd.NEW, {"name": f"n{i}"}),)), "seed")


def sat_req(tok: str, *trans: dict[str, Any], lim: int = 0) -> str:
    req: dict[str, Any] = {"rev": Z, "tops": [SITE], "trans": list(trans), "audits": True}
    if lim:
        req["lim"] = lim
    return f"evt.sat#{tok}\n" + orjson.dumps(req).decode()


def body_of(text: str) -> Any:
    return orjson.loads(text.partition("\n")[2])


def break_table(db: Path, back: bool = False) -> None:
    """The events table renamed under the hub (another process): its reads fail in the
    SQLite driver ("no such table"), its connection stays open."""
    old, new = ("evt_event", "evt_event_gone") if not back else ("evt_event_gone", "evt_event")
    with sqlite3.connect(db) as c:
        c.execute(f"ALTER TABLE {old} RENAME TO {new}")


def test_failed_read_of_a_sqlite_ledger_acks_and_rejects_what_was_published(
        tmp_path: Path, project: Project, clock: Clock) -> None:
    db = tmp_path / "hub.db"
    led = open_ledger(db, project)
    try:
        seed(led, 20)
        svc = HubService(led, clock)  # started after the seed: the reply reads the ledger
        svc.connect("S", "sat")
        good = {"uid": "u1", "acts": [{"top": SITE, "key": "new1", "cmd": "new",
                                       "arg": {"name": "mine"}}]}
        bad = {"uid": "u2", "acts": [{"top": SITE, "key": "s3", "cmd": "new",
                                      "arg": {"name": "again"}}]}  # exists: refused
        outs, job = svc.handle("S", sat_req("1", good, bad))
        assert outs == [] and job is not None
        outs = svc.finish(job, svc.run_job(job))
        (o,) = outs
        assert isinstance(o, Flush) and isinstance(o.catch_up, satreply.SatRead)
        break_table(db)
        (r,) = satreply.sat_read_sync(svc, o.catch_up)
        assert isinstance(r, Send)
        b = body_of(r.text)
        assert b["code"] == "read" and "res" not in b
        assert [a["uid"] for a in b["acks"]] == ["u1"]
        assert [x["uid"] for x in b["rejects"]] == ["u2"]
        assert "1 of the request's transactions were stored" in b["err"]
        # truthful, and nothing of the hub's storage: no path, driver text or operator hint
        for leak in (str(tmp_path), "hub.db", "no such table", "nothing was applied", "disk"):
            assert leak not in b["err"], b["err"]
        # a request without transactions (as a later batch's): the same text, no verdicts
        outs, job = svc.handle("S", sat_req("2", lim=5))
        assert job is None
        (o,) = outs
        assert isinstance(o, Flush) and isinstance(o.catch_up, satreply.SatRead)
        (r,) = satreply.sat_read_sync(svc, o.catch_up)
        assert isinstance(r, Send)
        b2 = body_of(r.text)
        assert b2["code"] == "read" and "acks" not in b2 and "rejects" not in b2
        assert b2["err"].split(";")[0] == b["err"].split(";")[0]  # the same text
        # evt.sub and evt.mon catch-ups, evt.hist: the same shape
        for req in (f"evt.sub#3\n{orjson.dumps({'rev': Z, 'tops': [SITE]}).decode()}",
                    "evt.mon#4\n" + orjson.dumps({"rev": "2000-01-01T00:00:00Z", "watch": [
                        {"top": SITE, "keys": ["s1"]}]}).decode(),
                    "evt.hist#5\n" + orjson.dumps({"top": SITE, "key": "s1"}).decode()):
            got = [x for x in svc.handle_sync("S", req) if isinstance(x, Send)]
            e = body_of(got[0].text)
            assert e["code"] == "read", e
            assert e["err"] == b2["err"].replace("evt.sat", req.partition("#")[0]), e
        break_table(db, back=True)
        # the satellite stored the verdicts and asks again without the transactions
        (r,) = [x for x in svc.handle_sync("S", sat_req("6")) if isinstance(x, Send)]
        res = body_of(r.text)["res"]
        assert [e["key"] for e in res["evs"]] == [f"s{i}" for i in range(20)] + ["new1"]
        assert "acks" not in res
        assert len([e for e in led.events(0, [SITE]) if e.key == "new1"]) == 1
    finally:
        led.close()


class FailOnce(SqlLedger):
    """A real SQLite ledger whose next catch-up read (a read with a limit) fails once when
    ``fail`` is set, and whose catch-up reads after that wait for ``gate``."""

    fail = False
    reads = 0
    gate: threading.Event

    def events(self, rev: Rev, tops: Iterable[str] | None = None, limit: int = 0,
               max_bytes: int = 0) -> list[Event]:
        if limit:
            self.reads += 1
            if self.fail:
                self.fail = False
                raise StorageError(f"reading events failed on {self._where}: disk I/O error")
            self.gate.wait(10)
        return super().events(rev, tops, limit, max_bytes)


async def test_satellite_stores_the_acks_of_a_failed_read_and_asks_again(
        tmp_path: Path, project: Project) -> None:
    """Through the real sync client: the hub publishes the edit, its read fails; the
    satellite stores the ack (the edit is accepted before the read is asked for again) and
    its next request carries no transaction: the hub published it once and was sent it once."""
    db = tmp_path / "hub.db"
    led = FailOnce("sqlite:///" + str(db), project)
    led.gate = threading.Event()
    led.gate.set()
    seed(led, 30)
    got: list[int] = []
    real = led.publish_many

    def publish_many(items: Any, now: Rev = 0) -> Any:
        got.extend(1 for _ in items)
        return real(items, now)

    led.publish_many = publish_many  # type: ignore[method-assign]
    sat = Satellite(tmp_path / "sat", project)
    try:
        uid = sat.pub([Action(SITE, "mine", Cmd.NEW, {"name": "Ridge"})])
        led.fail = True
        async with Hub(led, limits=Limits(rate=1e6, burst=10**6)) as hub:
            client = SyncClient(sat, hub.url, rnd=random.Random(0),
                                backoff=Backoff(0.6, 1.0))
            led.gate.clear()  # the read asked for again waits
            task = asyncio.create_task(client.sync_once(20))
            for _ in range(2000):
                if led.reads >= 2:
                    break
                await asyncio.sleep(0.005)
            assert led.reads == 2 and not led.fail
            # the ack of the failed read's reply is stored before the read is asked again
            rec = sat.receipt(uid)
            assert rec is not None and rec.state == ReceiptState.ACCEPTED
            assert "could not read its ledger" in (client.machine.info.last_error or "")
            led.gate.set()
            await task
        assert got == [1]  # sent to the hub once: never resent
        rv = sat.record(SITE, "mine")
        assert rv is not None and not rv.is_pending and rv.confirmed["name"] == "Ridge"
        assert sat.status().rev == led.rev()
        assert len([e for e in led.events(0, [SITE]) if e.key == "mine"]) == 1
        assert format_rev(sat.status().rev)
    finally:
        sat.close()
        led.close()


def test_failed_read_tells_a_daql_client_its_transactions_were_stored(
        tmp_path: Path, project: Project, clock: Clock) -> None:
    """daql's evt.sat carries no uids, so no ack names its transactions: the text counts
    what was stored and refused, or the client would send them again (twice applied)."""
    db = tmp_path / "hub.db"
    led = open_ledger(db, project)
    try:
        seed(led, 20)
        svc = HubService(led, clock)
        svc.connect("S", "sat")
        good = [{"acts": [{"top": SITE, "key": f"d{i}", "cmd": "new",
                           "arg": {"name": "daql"}}]} for i in range(2)]
        bad = {"acts": [{"top": SITE, "key": "s3", "cmd": "new", "arg": {"name": "x"}}]}
        # every one published (the common path)
        _, job = svc.handle("S", sat_req("1", *good))
        assert job is not None
        (o,) = svc.finish(job, svc.run_job(job))
        assert isinstance(o, Flush) and isinstance(o.catch_up, satreply.SatRead)
        break_table(db)
        (r,) = satreply.sat_read_sync(svc, o.catch_up)
        break_table(db, back=True)
        assert isinstance(r, Send)
        b = body_of(r.text)
        assert b["code"] == "read" and "acks" not in b and "rejects" not in b
        want = "2 of the request's transactions were stored and 0 refused"
        assert want in b["err"] and "do not send them again" in b["err"], b["err"]
        # one refused: since session 12 the reply is that refusal's error (as daql's),
        # before any read (tests/hub/test_daql_refused.py)
        _, job = svc.handle("S", sat_req("2", bad))
        assert job is not None
        (r,) = svc.finish(job, svc.run_job(job))
        assert isinstance(r, Send)
        b = body_of(r.text)
        assert "code" not in b and "refused 1 of the request's 1 transactions" in b["err"], b
    finally:
        led.close()
