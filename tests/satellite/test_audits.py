"""The ``audits`` extension: a satellite's replica learns who published each revision.

Real hub (websockets on 127.0.0.1 port 0) with tokens for two users, on a SQLite ledger (the
range read ``SqlLedger.audits``) and on the in-memory ledger; real satellites on SQLite files.
Frames to connections that do not ask for audits (daql clients) carry no ``audits`` field.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from core.ledger.memory import MemLedger
from core.ledger.protocols import Publisher
from core.ledger.sql import SqlLedger
from core.model import Action, Audit, Cmd, Event, Update
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project
from core.wire import SatRes, dec_sat_res, dec_update, enc_sat_res, enc_update
from hubserver.auth import Users
from hubserver.server import Hub
from hubserver.service import HubService, Send

SITE = "field.site"


@pytest.fixture(params=["sqlite", "memory"])
async def hub(request: pytest.FixtureRequest, tmp_path: Path,
              project: Project) -> AsyncIterator[tuple[Hub, dict[str, str]]]:
    users = Users(tmp_path / "users.db")
    tokens = {"ann": users.add("ann", "writer"), "bob": users.add("bob", "writer")}
    ledger: Publisher = (SqlLedger(f"sqlite:///{tmp_path / 'hub.sqlite'}", project)
                         if request.param == "sqlite" else MemLedger(project))
    async with Hub(ledger, users=users, close_ledger=True) as h:
        yield h, tokens
    users.close()


def client(sat: Satellite, hub: Hub, token: str, lim: int = 5000) -> SyncClient:
    return SyncClient(sat, hub.url, token, rnd=random.Random(0), lim=lim)


async def test_history_on_satellites_names_the_publishers(
        tmp_path: Path, project: Project, hub: tuple[Hub, dict[str, str]]) -> None:
    h, tok = hub
    a = Satellite(tmp_path / "a", project)
    b = Satellite(tmp_path / "b", project)
    live = Satellite(tmp_path / "live", project)
    a.pub([Action(SITE, "s1", Cmd.NEW, {"name": "Ridge"})])
    await client(a, h, tok["ann"]).sync_once(10)
    # ann's own satellite learns her name from the evt.sat reply that acks her edit
    assert [(x.usr, x.cmd) for x in a.history(SITE, "s1")] == [("ann", Cmd.NEW)]

    cl = client(live, h, tok["ann"])
    await cl.sync_once(10)
    task = asyncio.create_task(cl.run())
    try:
        await client(b, h, tok["bob"]).sync_once(10)
        b.pub([Action(SITE, "s1", Cmd.MOD, {"region": "North"})])
        await client(b, h, tok["bob"]).sync_once(10)
        for _ in range(300):  # bounded: 300 x 10 ms
            if len(live.history(SITE, "s1")) == 2:
                break
            await asyncio.sleep(0.01)
    finally:
        cl.stop()
        await asyncio.wait_for(task, 5)
    # bob's edit reached the live satellite as a push, with its audit
    assert [(x.usr, x.cmd) for x in live.history(SITE, "s1")] == [
        ("ann", Cmd.NEW), ("bob", Cmd.MOD)]
    assert [x.usr for x in b.history(SITE, "s1")] == ["ann", "bob"]

    # a fresh satellite catching up in batches of one event gets every audit too
    fresh = Satellite(tmp_path / "fresh", project)
    await client(fresh, h, tok["bob"], lim=1).sync_once(10)
    assert [x.usr for x in fresh.history(SITE, "s1")] == ["ann", "bob"]
    au = fresh.replica.read.audit(fresh.history(SITE, "s1")[1].rev)
    assert au is not None and au.usr == "bob" and au.created > 0 and au.uid
    for s in (a, b, live, fresh):
        s.close()


def test_service_sends_audits_only_to_connections_that_ask(project: Project) -> None:
    svc = HubService(MemLedger(project), clock=lambda: 1_000_000)
    for conn, user in (("daql", "ann"), ("sat", "bob"), ("pub", "carl")):
        svc.connect(conn, user)
    sat_req = '{"rev":"0001-01-01T00:00:00Z","trans":[],"tops":["field.site"]}'
    svc.handle_sync("daql", "evt.sat#1\n" + sat_req)
    svc.handle_sync("sat", "evt.sat#1\n" + sat_req[:-1] + ',"audits":true}')
    outs = svc.handle_sync("pub", 'evt.pub#1\n{"acts":[{"top":"field.site","key":"k",'
                           '"cmd":"new","arg":{"name":"n"}}]}')
    pushes = {o.conn: svc.take_push(o.conn) for o in outs if not isinstance(o, Send)}
    daql, sat = pushes["daql"], pushes["sat"]
    assert daql is not None and sat is not None
    assert "audits" not in orjson.loads(daql.partition("\n")[2])
    assert orjson.loads(sat.partition("\n")[2])["audits"] == [
        {"rev": "0001-01-01T00:16:40Z", "usr": "carl"}]
    # catch-up replies: the same rule, audits read from the ledger
    for conn in ("daql", "sat"):
        svc.disconnect(conn)
        svc.connect(conn, "x")
    plain = svc.handle_sync("daql", "evt.sat#2\n" + sat_req)
    ours = svc.handle_sync("sat", "evt.sat#2\n" + sat_req[:-1] + ',"audits":true}')
    assert isinstance(plain[0], Send) and isinstance(ours[0], Send)
    assert "audits" not in orjson.loads(plain[0].text.partition("\n")[2])["res"]
    res = dec_sat_res(orjson.loads(ours[0].text.partition("\n")[2])["res"])
    assert [(x.usr, x.rev) for x in res.audits] == [("carl", res.evs[0].rev)]


def test_audits_round_trip_and_are_omitted_when_empty() -> None:
    ev = Event(1, 5000, SITE, "k", Cmd.NEW, {"name": "n"})
    au = Audit(5000, 4000, 0, "ann", {"resolves": "u0"}, "u1")
    res = SatRes(5000, (ev,), audits=(au,))
    assert dec_sat_res(enc_sat_res(res)) == res
    upd = Update(5000, (ev,), audits=(Audit(5000, 0, 0, "bob"),))
    assert dec_update(enc_update(upd)) == upd
    assert "audits" not in enc_update(Update(5000, (ev,)))
    assert "audits" not in enc_sat_res(SatRes(5000, (ev,)))
