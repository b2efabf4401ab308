"""A pending edit whose uid the hub already applied to another transaction (a broken or
hostile client reused it) is shown rejected, naming the clash, never dropped as if acked
(session 11, wire review). A real hub on 127.0.0.1, real satellites."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
from websockets.asyncio.client import connect

from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient
from core.satellite.machine import REJECTED_BY_HUB
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub

SITE = "field.site"


async def test_a_pending_edit_whose_uid_was_taken_shows_rejected(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    b = Satellite(tmp_path / "b", project)
    try:
        uid = b.pub([Action(SITE, "mine", Cmd.NEW, {"name": "B's edit"})])
        async with connect(hub.url) as ws:  # another client publishes under b's uid first
            await ws.send("evt.pub#1\n" + orjson.dumps({"uid": uid, "acts": [
                {"top": SITE, "key": "other", "cmd": "new", "arg": {"name": "X"}}]}).decode())
            assert '"res"' in str(await ws.recv())
        await SyncClient(b, hub.url, rnd=random.Random(0)).sync_once(10)
        [r] = b.receipts([ReceiptState.REJECTED])
        assert r.uid == uid and f"uid {uid} was already applied with other actions" in r.err
        assert "a client must make a new uid per transaction" in r.err
        st = b.status()
        assert st.last_error.startswith(REJECTED_BY_HUB) and uid in st.last_error
        assert not b.receipts([ReceiptState.ACCEPTED])  # before: acked, the edit dropped
        assert b.record(SITE, "other") is not None  # the other client's record, synced
    finally:
        b.close()


async def test_an_audit_of_another_transaction_under_the_uid_is_no_ack(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    """The uid of an edit still held back (behind an earlier edit of its record) is used by
    another client first: the catch-up's audit names it, with other events. Before, the
    satellite took that audit as the edit's lost ack and dropped the edit."""
    b = Satellite(tmp_path / "b", project)
    try:
        b.pub([Action(SITE, "r", Cmd.NEW, {"name": "first"})])
        held = b.pub([Action(SITE, "r", Cmd.MOD, {"name": "second"})])  # waits for the first
        async with connect(hub.url) as ws:
            await ws.send("evt.pub#1\n" + orjson.dumps({"uid": held, "acts": [
                {"top": SITE, "key": "other", "cmd": "new", "arg": {"name": "X"}}]}).decode())
            assert '"res"' in str(await ws.recv())
        await SyncClient(b, hub.url, rnd=random.Random(0)).sync_once(10)
        r = b.receipt(held)
        assert r is not None and r.state == ReceiptState.REJECTED
        assert f"uid {held} was already applied with other actions" in r.err
        assert b.record(SITE, "r") is not None
    finally:
        b.close()
