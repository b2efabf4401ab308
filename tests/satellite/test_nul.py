"""A NUL character (U+0000) in a text value: refused when values are checked (PostgreSQL
cannot store it), and an edit holding one queued before that check never blocks a satellite
against a PostgreSQL hub: the hub rejects that transaction alone (review session 7, HIGH)."""

from __future__ import annotations

import logging
import random
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.errors import UnstorableError, ValidationError
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project, parse_project
from core.wire import dumps, enc_trans
from hubserver.outputs import Send
from hubserver.server import Hub
from hubserver.service import HubService

SITE, OBS = "field.site", "field.obs"


def test_the_schema_refuses_nul_in_text_keys_and_refs_not_in_json(project: Project) -> None:
    for top, arg in ((SITE, {"name": "a\x00b"}), (SITE, {"name": "n", "notes": "x\x00"}),
                     (OBS, {"species": "s", "site": "k\x00"})):
        with pytest.raises(ValidationError, match=r"NUL characters? \(U\+0000\)"):
            project.check_action(Action(top, "k1", Cmd.NEW, arg))
    with pytest.raises(ValidationError, match=r"key 'a\\x00' holds a NUL character"):
        project.check_action(Action(SITE, "a\x00", Cmd.NEW, {"name": "n"}))
    with_json = parse_project('[x.y.fields]\nname = "str"\ndoc = "json"\n')
    # a json value is stored as JSON text, where U+0000 is escaped: both backends keep it
    with_json.check_action(Action("x.y", "k", Cmd.NEW, {"doc": {"a\x00": "b\x00"}}))
    with pytest.raises(Exception, match="NUL"):
        parse_project('[x.y.fields]\nc = { type = "enum", values = ["a\\u0000"] }\n')


@pytest.fixture
async def pg_hub(fresh_pg_db: str, project: Project) -> AsyncIterator[Hub]:
    async with Hub(SqlLedger(fresh_pg_db, project), port=0, close_ledger=True) as h:
        yield h


async def sync(sat: Satellite, hub: Hub) -> None:
    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(20)


async def test_a_nul_edit_queued_before_the_check_is_rejected_alone(
        tmp_path: Path, project: Project, pg_hub: Hub) -> None:
    a = Satellite(tmp_path / "a", project)
    bad = a.pub([Action(OBS, "z1", Cmd.NEW, {"species": "nulPLACEHOLDERhere"})])
    good = a.pub([Action(SITE, "s1", Cmd.NEW, {"name": "Ridge"})])
    a.close()
    # what an Outpost before session 7 queued: the schema let the NUL through
    db = sqlite3.connect(tmp_path / "a" / "satellite.db")
    with db:
        n = db.execute("UPDATE sat_receipt SET acts = replace(acts, 'PLACEHOLDER', "
                       "'\\u0000') WHERE uid = ?", (bad,)).rowcount
    db.close()
    assert n == 1
    b = Satellite(tmp_path / "b", project)
    b.pub([Action(SITE, "s2", Cmd.NEW, {"name": "From b"})])
    await sync(b, pg_hub)
    a = Satellite(tmp_path / "a", project)
    try:
        queued = a.receipt(bad)
        assert queued is not None and queued.acts[0].arg == {"species": "nul\x00here"}
        await sync(a, pg_hub)  # was: an error for the whole evt.sat, for ever
        rec = a.receipt(bad)
        assert rec is not None and rec.state == ReceiptState.REJECTED
        assert "NUL characters (U+0000)" in rec.err
        ok = a.receipt(good)
        assert ok is not None and ok.state == ReceiptState.ACCEPTED
        st = a.status()
        assert st.pending == 0 and st.conflicts == 1
        rv = a.record(SITE, "s2")  # other people's changes arrive again
        assert rv is not None and rv.confirmed is not None
        assert pg_hub.ledger.state(OBS, "z1") is None
    finally:
        a.close()
        b.close()


def _sat_frame(*trans: Trans) -> str:
    body = {"rev": "0001-01-01T00:00:00Z", "tops": [SITE], "audits": True,
            "trans": [enc_trans(t) for t in trans]}
    return "evt.sat#1\n" + dumps(body).decode()


def test_a_transaction_the_database_cannot_store_is_a_reject_logged_as_a_warning(
        fresh_pg_db: str, project: Project, caplog: pytest.LogCaptureFixture) -> None:
    # any value PostgreSQL refuses for its content (class 22 data errors) is a verdict on
    # that transaction; here a NUL in the audit's user, which no schema check sees
    led = SqlLedger(fresh_pg_db, project)
    try:
        svc = HubService(led)
        # what an older satellite sends: a NUL in a text value, then a good transaction
        svc.connect("c0", "ann")
        nul = Trans((Action(SITE, "n1", Cmd.NEW, {"name": "a\x00b"}),), uid="u-nul")
        fine = Trans((Action(SITE, "n2", Cmd.NEW, {"name": "fine"}),), uid="u-fine")
        outs = svc.handle_sync("c0", _sat_frame(nul, fine))
        reply = next(o.text for o in outs if isinstance(o, Send) and o.text.startswith("evt.sat"))
        assert '"rejects":[{"uid":"u-nul"' in reply and "NUL characters" in reply, reply
        assert '"acks":[{"uid":"u-fine"' in reply, reply
        assert led.state(SITE, "n2") is not None and led.state(SITE, "n1") is None
        svc.connect("c1", "x\x00y")
        t1 = Trans((Action(SITE, "k1", Cmd.NEW, {"name": "one"}),), uid="u1")
        with caplog.at_level(logging.WARNING, logger="outpost.hub"):
            outs = svc.handle_sync("c1", _sat_frame(t1))
        reply = next(o.text for o in outs if isinstance(o, Send) and o.text.startswith("evt.sat"))
        assert '"rejects"' in reply and "cannot store this transaction" in reply
        assert '"err":"the hub' not in reply  # not an error for the whole request
        assert led.state(SITE, "k1") is None
        warned = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert any("cannot store" in r.getMessage() and "u1" in r.getMessage()
                   for r in warned), warned
        assert not any("one" in r.getMessage() for r in warned)  # no transaction bodies
        # the ledger: only the transaction at fault is rejected, the others of the batch stored
        res = led.publish_many([(t1, "ann"), (Trans((Action(SITE, "k2", Cmd.NEW, {"name": "b"}),),
                                                     uid="u2"), "b\x00b"),
                                (Trans((Action(SITE, "k3", Cmd.NEW, {"name": "c"}),),
                                       uid="u3"), "ann")])
        assert [type(r).__name__ for r in res] == ["PubResult", "UnstorableError", "PubResult"]
        assert isinstance(res[1], UnstorableError) and isinstance(res[1], ValidationError)
        assert sorted(led.keys(SITE)) == ["k1", "k3", "n2"]
    finally:
        led.close()


def test_a_uid_the_ledger_cannot_store_is_refused(sql_url: str, project: Project) -> None:
    led = SqlLedger(sql_url, project)
    try:
        act = (Action(SITE, "k1", Cmd.NEW, {"name": "n"}),)
        res = led.publish_many([(Trans(act, uid="u" * 201), "ann"),
                                (Trans(act, uid="a\x00"), "ann"),
                                (Trans(act, uid="ok"), "ann")])
        assert "at most 200 characters" in str(res[0]) and "NUL" in str(res[1])
        assert type(res[2]).__name__ == "PubResult"
    finally:
        led.close()
