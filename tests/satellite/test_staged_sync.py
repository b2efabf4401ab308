"""``Satellite.staged`` beside a running sync (merge review 11): the app's import, made ready
step by step and queued in one commit, is sent at once like any edit, and an ack of the
user's own earlier edit that arrives between two steps does not make it a conflict with that
edit. Real SQLite files, a real hub on 127.0.0.1."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub

SITE = "field.site"


async def _until(cond: Callable[[], bool], secs: float) -> bool:
    for _ in range(int(secs * 20)):
        if cond():
            return True
        await asyncio.sleep(0.05)
    return cond()


async def _sync(sat: Satellite, hub: Hub) -> None:
    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)


def test_a_staged_commit_reaches_the_outbox_the_machine_already_read(
        tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path, project)
    try:
        a = sat.pub([Action(SITE, "a", Cmd.NEW, {"name": "A"})])
        assert [t.uid for t in sat.outbox()] == [a]  # read (and kept) by the sync machine
        st = sat.staged()
        b = st.add([Action(SITE, "b", Cmd.NEW, {"name": "B"})])
        assert st.commit() == [b]
        assert [t.uid for t in sat.outbox()] == [a, b]  # was [a]: the import never sent
    finally:
        sat.close()


async def test_a_staged_import_made_while_online_is_sent_at_once(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    sat = Satellite(tmp_path / "a", project)
    cl = SyncClient(sat, hub.url, rnd=random.Random(0))
    task = asyncio.create_task(cl.run())
    try:
        assert await _until(lambda: sat.status().online, 10)
        sat.pub([Action(SITE, "p0", Cmd.NEW, {"name": "by pub"})])
        assert await _until(lambda: hub.ledger.state(SITE, "p0") is not None, 10)
        st = sat.staged()
        for i in range(3):
            st.add([Action(SITE, f"i{i}", Cmd.NEW, {"name": f"imported {i}"})])
        st.commit()
        assert await _until(lambda: all(hub.ledger.state(SITE, f"i{i}") is not None
                                        for i in range(3)), 10), sat.status()
        assert await _until(lambda: sat.status().pending == 0, 10), sat.status()
    finally:
        cl.stop()
        await asyncio.wait_for(task, 10)
        sat.close()


@pytest.mark.parametrize("staged", [False, True])
async def test_an_own_edit_acked_between_two_import_steps_is_not_a_conflict(
        tmp_path: Path, project: Project, hub: Hub, staged: bool) -> None:
    sat = Satellite(tmp_path / "a", project)
    try:
        sat.pub([Action(SITE, "r", Cmd.NEW, {"name": "v0"})])
        await _sync(sat, hub)
        sat.pub([Action(SITE, "r", Cmd.MOD, {"name": "typed in the form"})])  # pending
        acts = [Action(SITE, "r", Cmd.MOD, {"name": "from the CSV"})]
        if staged:
            st = sat.staged()
            st.add(acts)
            await _sync(sat, hub)  # the app's sync runs between two import steps
            (uid,) = st.commit()
        else:
            (uid,) = sat.pub_many([(acts, None)])
            await _sync(sat, hub)
        await _sync(sat, hub)
        rec = sat.receipt(uid)
        assert rec is not None and rec.state == ReceiptState.ACCEPTED, rec
        state = hub.ledger.state(SITE, "r")
        assert state is not None and state["name"] == "from the CSV"
        assert sat.status().conflicts == 0
    finally:
        sat.close()
