"""Merge review 15a (LOW-MEDIUM): an edit sent with one user's token, applied by the hub,
its answer lost, then sent again with ANOTHER user's token (the token changed in between:
the old one refused, a settle that timed out, `outpost connect --token` after a crash) was
rejected with "already applied with other actions … nothing of this one was applied", which
was false: the hub holds it, audited as the first user, and the satellite showed it as a
conflict to resolve. Now the hub's reject says the truth (applied, at which revision, as
whose) and the satellite takes it as the edit's ack: accepted, its history naming the first
user. Also with a hub before session 16 (its old words), when the reply carries the audit of
that revision. A real hub on 127.0.0.1 with real users, real satellites."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from core.ledger import MemLedger
from core.model import Action, Cmd, Trans
from core.revision import format_rev
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient
from core.satellite.machine import Backoff
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.auth import Users
from hubserver.limits import Limits
from hubserver.server import Hub
from tests.hub.conftest import request
from tests.hub.test_read_failed import FailOnce, seed

SITE = "field.site"


async def _applied_with(url: str, token: str, uid: str, key: str, name: str) -> str:
    """Publish the satellite's pending edit ``uid`` with ``token`` as the satellite sent it:
    the hub applies it, and the satellite never hears the answer (its connection lost)."""
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        got = await request(ws, "evt.pub", {"uid": uid, "acts": [
            {"top": SITE, "key": key, "cmd": "new", "arg": {"name": name}}]})
        return str(got["res"]["rev"])


async def _colleague(url: str, token: str, n: int) -> None:
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        for i in range(n):
            assert "res" in await request(ws, "evt.pub", {"acts": [
                {"top": SITE, "key": f"c{i}", "cmd": "new", "arg": {"name": f"c{i}"}}]})


def _check_accepted(sat: Satellite, uid: str, rev: str) -> None:
    [r] = sat.receipts([ReceiptState.ACCEPTED])
    assert r.uid == uid and format_rev(r.rev) == rev, r
    assert not sat.receipts([ReceiptState.REJECTED])  # before: a conflict to resolve
    st = sat.status()
    assert st.pending == 0 and st.conflicts == 0 and not st.last_error, st
    rv = sat.record(SITE, "mine")
    assert rv is not None and not rv.pending and not rv.conflict
    assert [h.usr for h in sat.history(SITE, "mine")] == ["alice"]  # whose token applied it


async def test_an_edit_applied_with_the_old_token_is_accepted_with_the_new(
        tmp_path: Path, project: Project) -> None:
    users = Users(tmp_path / "users.db")
    alice, bob = users.add("alice"), users.add("bob")
    try:
        async with Hub(MemLedger(project), users=users) as hub:
            sat = Satellite(tmp_path / "sat", project)
            try:
                uid = sat.pub([Action(SITE, "mine", Cmd.NEW, {"name": "typed"})])
                # colleagues published more than a reply holds before the edit reached the
                # hub: its revision (and audit) comes in a later reply than the one
                # answering its resend
                await _colleague(hub.url, alice, 5)
                rev = await _applied_with(hub.url, alice, uid, "mine", "typed")
                client = SyncClient(sat, hub.url, bob, rnd=random.Random(0), lim=2)
                await client.sync_once(30)
                _check_accepted(sat, uid, rev)
                assert sat.record(SITE, "c4") is not None  # caught up
            finally:
                sat.close()
    finally:
        users.close()


@asynccontextmanager
async def _hub_before_16(up: str, token: str) -> AsyncIterator[tuple[str, list[str]]]:
    """A proxy on 127.0.0.1 to the hub at ``up`` (with ``token``) that gives the rejects of
    evt.sat replies a hub before session 16's words for a uid applied before; with the
    rejects' own words, as they come."""
    def old(uid: str) -> str:
        return (f"uid {uid} was already applied with other actions; a client must make a "
                "new uid per transaction (nothing of this one was applied)")

    seen: list[str] = []

    def change(text: str) -> str:
        subj, _, body = text.partition("\n")
        if not subj.startswith("evt.sat") or "rejects" not in body:
            return text
        d = json.loads(body)
        for r in d["res"]["rejects"]:
            seen.append(r["err"])
            r["err"] = old(r["uid"])
        return subj + "\n" + orjson.dumps(d).decode()

    async def handle(ws: ServerConnection) -> None:
        async with connect(up, max_size=None,
                           additional_headers={"Authorization": f"Bearer {token}"}) as hub:
            async def down() -> None:
                async for m in hub:
                    await ws.send(change(m) if isinstance(m, str) else m)

            async def upward() -> None:
                async for m in ws:
                    await hub.send(m)

            tasks = [asyncio.create_task(down()), asyncio.create_task(upward())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in tasks:
                t.cancel()

    async with serve(handle, "127.0.0.1", 0, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}", seen


async def test_with_a_hub_before_16_the_audit_in_the_reply_tells(
        tmp_path: Path, project: Project) -> None:
    users = Users(tmp_path / "users.db")
    alice, bob = users.add("alice"), users.add("bob")
    try:
        async with Hub(MemLedger(project), users=users) as hub:
            sat = Satellite(tmp_path / "sat", project)
            other = Satellite(tmp_path / "other", project)
            try:
                uid = sat.pub([Action(SITE, "mine", Cmd.NEW, {"name": "typed"})])
                rev = await _applied_with(hub.url, alice, uid, "mine", "typed")
                async with _hub_before_16(hub.url, bob) as (url, seen):
                    await SyncClient(sat, url, rnd=random.Random(0)).sync_once(30)
                assert len(seen) == 1 and "with these same actions" in seen[0], seen
                _check_accepted(sat, uid, rev)
                # another client's transaction under a uid of this satellite (other events):
                # still rejected, never taken as this edit's ack (session 11)
                taken = other.pub([Action(SITE, "theirs", Cmd.NEW, {"name": "mine"})])
                await _applied_with(hub.url, alice, taken, "x", "not the same")
                async with _hub_before_16(hub.url, bob) as (url, seen):
                    await SyncClient(other, url, rnd=random.Random(0)).sync_once(30)
                assert len(seen) == 1 and "with other actions" in seen[0], seen
                [r] = other.receipts([ReceiptState.REJECTED])
                assert r.uid == taken and "already applied with other actions" in r.err
            finally:
                sat.close()
                other.close()
    finally:
        users.close()


async def test_a_failed_read_carries_the_truth_too(tmp_path: Path, project: Project) -> None:
    """The hub's read fails after the resend was refused (its ``code: read`` error reply
    carries the request's verdicts): the edit is accepted there too."""
    led = FailOnce("sqlite:///" + str(tmp_path / "hub.db"), project)
    led.gate = threading.Event()
    led.gate.set()
    seed(led, 30)
    sat = Satellite(tmp_path / "sat", project)
    try:
        uid = sat.pub([Action(SITE, "mine", Cmd.NEW, {"name": "typed"})])
        rec = sat.receipt(uid)
        assert rec is not None
        first = led.publish(Trans(rec.acts, uid=uid), "alice")  # the answer lost
        led.fail = True
        async with Hub(led, limits=Limits(rate=1e6, burst=10**6)) as hub:  # "anonymous"
            client = SyncClient(sat, hub.url, rnd=random.Random(0), backoff=Backoff(0.6, 1.0))
            led.gate.clear()  # the read asked for again waits
            task = asyncio.create_task(client.sync_once(20))
            for _ in range(2000):  # bounded: 10 s
                if led.reads >= 2:
                    break
                await asyncio.sleep(0.005)
            assert led.reads == 2 and not led.fail
            rec = sat.receipt(uid)  # stored from the failed read's reply
            assert rec is not None and rec.state == ReceiptState.ACCEPTED, rec
            assert rec.rev == first.rev
            led.gate.set()
            await task
        st = sat.status()
        assert st.pending == 0 and st.conflicts == 0, st
        assert [h.usr for h in sat.history(SITE, "mine")] == ["alice"]
    finally:
        sat.close()
        led.close()
