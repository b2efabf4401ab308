"""Hostile input to the hub (session 11, reviewer "wire"): what one connection's monitors may
hold is bounded, on the in-process hub on real websockets (SQLite ledger, token auth)."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import orjson
from websockets.asyncio.client import connect

from core.ledger.sql import SqlLedger
from core.schema import Project
from hubserver.auth import Users
from hubserver.limits import Limits
from hubserver.server import Hub
from hubserver.service import HubService, Send
from tests.hub.conftest import Clock, request

TOP = "prod.cat"


def watch(n: int, start: int = 0, top: str = TOP) -> list[dict[str, object]]:
    return [{"top": top, "keys": [str(i) for i in range(start, start + n)]}]


async def test_monitors_are_bounded_per_watch_and_connection(tmp_path: Path,
                                                             prod: Project) -> None:
    users = Users(tmp_path / "users.db")
    rita = users.add("rita", "reader")
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", prod)
    lim = Limits(max_watch_keys=50, max_monitors=3, max_monitor_keys=100)
    try:
        async with Hub(led, users=users, limits=lim) as hub, \
                connect(hub.url, additional_headers={"Authorization": f"Bearer {rita}"},
                        max_size=None) as ws:
            # one watch over the limit: refused, naming the limit and the fix
            err = (await request(ws, "evt.mon", {"watch": watch(51)}))["err"]
            assert "51 keys" in err and "50 keys per watch" in err
            assert "--max-watch-keys" in err and "evt.sub" in err
            # watches over max_tops are called watches (before: "N topics")
            err = (await request(ws, "evt.mon", {"watch": watch(1) * 1001}))["err"]
            assert err.startswith("evt.mon: 1001 watches; the limit is 1000")
            # a key no record can have
            err = (await request(ws, "evt.mon", {"watch": [{"top": TOP,
                                                            "keys": ["1" * 201]}]}))["err"]
            assert "longer than 200 characters" in err
            # keys per connection: 50 + 50, then 1 more is refused
            a = (await request(ws, "evt.mon", {"watch": watch(50)}))["res"]
            b = (await request(ws, "evt.mon", {"watch": watch(50, 50)}))["res"]
            err = (await request(ws, "evt.mon", {"watch": watch(1, 100)}))["err"]
            assert "would watch 101 keys (100 already, 1 asked)" in err
            assert "100 per connection" in err and "--max-monitor-keys" in err
            assert "evt.unmon" in err
            # an evt.unmon frees its keys: the same request is taken
            assert (await request(ws, "evt.unmon", {"mon": a}))["res"] is True
            c = (await request(ws, "evt.mon", {"watch": watch(1, 100)}))["res"]
            d = (await request(ws, "evt.mon", {"watch": watch(1, 101)}))["res"]
            # monitors per connection: b, c, d held; a fourth is refused
            err = (await request(ws, "evt.mon", {"watch": watch(1, 102)}))["err"]
            assert "holds 3 monitors" in err and "3 per connection" in err
            assert "--max-monitors" in err and "evt.unmon" in err
            assert len({b, c, d}) == 3
            # the monitors kept still note their keys
            async with connect(hub.url, additional_headers={
                    "Authorization": f"Bearer {users.add('ann', 'writer')}"}) as w:
                assert "res" in await request(w, "evt.pub", {"acts": [
                    {"top": TOP, "key": "60", "cmd": "new", "arg": {"name": "x"}}]})
            for _ in range(20):
                head, _, body = str(await ws.recv()).partition("\n")
                if head == "evt.update":
                    break
            assert orjson.loads(body)["note"] == [{"mon": b, "watch": [
                {"top": TOP, "keys": ["60"]}]}]
    finally:
        users.close()
        led.close()


async def test_default_limits_refuse_the_flood(tmp_path: Path, prod: Project) -> None:
    """The reviewer's frame: one watch of 100,000 keys (868 KiB, under --max-message)."""
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", prod)
    async with Hub(led, close_ledger=True) as hub, connect(hub.url, max_size=None) as ws:
        body = {"watch": watch(100_000)}
        assert len(orjson.dumps(body)) < Limits().max_message
        err = (await request(ws, "evt.mon", body))["err"]
        assert "100000 keys" in err and "10000 keys per watch" in err
        # 2 x 10,000 keys fit; a third monitor would watch 30,000
        for i in range(2):
            assert isinstance((await request(ws, "evt.mon",
                                             {"watch": watch(10_000, i * 10_000)}))["res"], int)
        err = (await request(ws, "evt.mon", {"watch": watch(10_000, 20_000)}))["err"]
        assert "would watch 30000 keys" in err and "20000 per connection" in err


def test_replaced_monitors_free_their_memory(tmp_path: Path, prod: Project,
                                             clock: Clock) -> None:
    """Monitors unmonitored (or of a connection gone) give their memory back: a client that
    replaces its monitor over and over holds one monitor's worth."""
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", prod)
    svc = HubService(led, clock, Limits(rate=1e9, burst=10**9))
    frames = [f"evt.mon#{i}\n" + orjson.dumps({"watch": watch(10_000, i * 10_000)}).decode()
              for i in range(40)]
    tracemalloc.start()
    try:
        svc.connect("A", "a")
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        mon = None
        for i, text in enumerate(frames):
            if mon is not None:
                [out] = svc.handle_sync("A", f"evt.unmon#u{i}\n" + orjson.dumps(
                    {"mon": mon}).decode())
                assert isinstance(out, Send) and out.text.endswith('{"res":true}')
            [out] = svc.handle_sync("A", text)
            assert isinstance(out, Send)
            mon = orjson.loads(out.text.partition("\n")[2])["res"]
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
        # one monitor of 10,000 keys is about 1 MB; 40 kept would be 40 MB
        assert held < 3_000_000, held
        assert svc.subs.held("A") == (1, 10_000)
        svc.disconnect("A")
        gc.collect()
        assert tracemalloc.get_traced_memory()[0] - base < 500_000
    finally:
        tracemalloc.stop()
        led.close()


# -- a uid reused with other content, or by another user, is an error, not an ack -------------

def new(key: str, name: str) -> dict[str, object]:
    return {"top": TOP, "key": key, "cmd": "new", "arg": {"name": name}}


CLASH = ("uid dup-1 was already applied with other actions; a client must make a new uid per "
         "transaction (nothing of this one was applied)")


async def test_a_reused_uid_is_refused_unless_it_is_a_resend(sql_url: str,
                                                             prod: Project,
                                                             tmp_path: Path) -> None:
    users = Users(tmp_path / "users.db")
    alice, bob = users.add("alice", "writer"), users.add("bob", "writer")
    led = SqlLedger(sql_url, prod)
    try:
        async with Hub(led, users=users) as hub, \
                connect(hub.url, additional_headers={"Authorization": f"Bearer {alice}"}) as a, \
                connect(hub.url, additional_headers={"Authorization": f"Bearer {bob}"}) as b:
            first = (await request(a, "evt.pub", {"uid": "dup-1", "acts": [new("1", "alice")]}))
            rev = first["res"]["rev"]
            # the same transaction again (a resend after a lost reply): acknowledged
            again = await request(a, "evt.pub", {"uid": "dup-1", "acts": [new("1", "alice")]})
            assert again["res"]["rev"] == rev
            # other content under the uid: refused, naming the clash (before: acked with
            # alice's revision and her events, the new edit dropped)
            other = await request(a, "evt.pub", {"uid": "dup-1",
                                                 "acts": [new("2", "DIFFERENT")]})
            assert other == {"err": CLASH}
            # another user's uid, in evt.sat: a reject, not an ack with alice's revision
            sat = (await request(b, "evt.sat", {
                "rev": "0001-01-01T00:00:00Z", "tops": [], "trans": [
                    {"uid": "dup-1", "acts": [new("3", "bob")]},
                    {"uid": "dup-1", "acts": [new("1", "alice")]},  # her very edit, by bob
                    {"uid": "bob-1", "acts": [new("4", "bob")]},
                    {"uid": "bob-1", "acts": [new("5", "bob")]}]}))["res"]  # in one batch
            assert [x["uid"] for x in sat["acks"]] == ["bob-1"]
            # her very edit: refused too, but saying the truth (session 16: "other actions
            # … nothing of this one was applied"): it was applied, as alice's, at her
            # revision (bob holds its uid and actions; any reader sees who made a revision
            # in the audits)
            same = (f"uid dup-1 was already applied with these same actions at revision "
                    f"{rev}, sent with user alice's token: this edit is in the hub as "
                    "alice's and was not applied again (nothing was changed)")
            assert sat["rejects"] == [{"uid": "dup-1", "err": CLASH},
                                      {"uid": "dup-1", "err": same},
                                      {"uid": "bob-1", "err": CLASH.replace("dup-1", "bob-1")}]
            # nothing of alice's revision for other actions under her uid
            assert rev not in orjson.dumps(sat["rejects"][0]).decode()
            # nothing of the refused edits was stored
            for key in ("2", "3", "5"):
                assert (await request(a, "evt.hist", {"top": TOP, "key": key}))["res"] == []
            assert len((await request(a, "evt.hist", {"top": TOP, "key": "4"}))["res"]) == 1
    finally:
        users.close()
        led.close()


# -- a revision in the future on evt.sat / evt.sub: an error, nothing subscribed ---------------

FUTURE = "9999-01-01T00:00:00Z"


async def test_a_future_rev_is_refused_and_subscribes_nothing(tmp_path: Path,
                                                              prod: Project) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", prod)
    label = "prod.label"
    async with Hub(led, close_ledger=True) as hub, connect(hub.url) as a, \
            connect(hub.url) as b, connect(hub.url) as p:
        at = (await request(p, "evt.pub", {"acts": [
            {"top": label, "key": "1", "cmd": "new", "arg": {"name": "L"}}]}))["res"]["rev"]
        err = (await request(a, "evt.sat", {"rev": FUTURE, "tops": [label], "trans": [
            {"uid": "u1", "acts": [{"top": label, "key": "2", "cmd": "new",
                                    "arg": {"name": "x"}}]}]}))["err"]
        # before: {"res":{"rev":"9999-…"}} and no push on that connection ever after
        assert err.startswith(f"evt.sat: rev {FUTURE} is in the future of the ledger (at {at})")
        assert "restored from an older backup" in err and "outpost carry" in err
        err = (await request(b, "evt.sub", {"rev": FUTURE, "tops": [label]}))["err"]
        assert err.startswith(f"evt.sub: rev {FUTURE} is in the future of the ledger")
        # nothing was published or subscribed: the same topics subscribe now
        assert (await request(p, "evt.hist", {"top": label, "key": "2"}))["res"] == []
        assert (await request(b, "evt.sub", {"rev": at, "tops": [label]}))["res"] is None
        assert "evs" in (await request(a, "evt.sat", {"rev": "0001-01-01T00:00:00Z",
                                                      "tops": [label]}))["res"]
        # and both get the next publish as a push
        nxt = (await request(p, "evt.pub", {"acts": [
            {"top": label, "key": "3", "cmd": "new", "arg": {"name": "M"}}]}))["res"]["rev"]
        for ws in (a, b):
            for _ in range(20):
                head, _, body = str(await ws.recv()).partition("\n")
                if head == "evt.update":
                    break
            assert orjson.loads(body)["rev"] == nxt


async def test_a_future_rev_on_evt_mon_is_refused_and_monitors_nothing(
        tmp_path: Path, prod: Project) -> None:
    """Session 12: evt.mon with a future rev was taken (a monitor made, its catch-up noting
    nothing), though evt.sat and evt.sub refuse it: refused the same way, same words, no
    monitor made (the connection's monitor count is unchanged)."""
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", prod)
    label = "prod.label"
    lim = Limits(max_monitors=1)
    async with Hub(led, close_ledger=True, limits=lim) as hub, connect(hub.url) as m, \
            connect(hub.url) as b, connect(hub.url) as p:
        at = (await request(p, "evt.pub", {"acts": [
            {"top": label, "key": "1", "cmd": "new", "arg": {"name": "L"}}]}))["res"]["rev"]
        watch1 = [{"top": label, "keys": ["1"]}]
        err = (await request(m, "evt.mon", {"rev": FUTURE, "watch": watch1}))["err"]
        sub_err = (await request(b, "evt.sub", {"rev": FUTURE, "tops": [label]}))["err"]
        assert err == sub_err.replace("evt.sub:", "evt.mon:", 1), (err, sub_err)
        assert err.startswith(f"evt.mon: rev {FUTURE} is in the future of the ledger (at {at})")
        # no monitor was made: the one this connection may hold is still free
        mon = (await request(m, "evt.mon", {"rev": at, "watch": watch1}))["res"]
        assert isinstance(mon, int | str), mon
        nxt = (await request(p, "evt.pub", {"acts": [
            {"top": label, "key": "1", "cmd": "mod", "arg": {"name": "M"}}]}))["res"]["rev"]
        for _ in range(20):
            head, _, body = str(await m.recv()).partition("\n")
            if head == "evt.update":
                break
        update = orjson.loads(body)
        assert update["rev"] == nxt and update["note"] == [{"mon": mon, "watch": watch1}]
