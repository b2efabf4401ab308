"""Receipts rejected before session 10 have no rejection revision stored (``rev`` 0): the
revision a resolution without ``--seen`` is checked against was the changes that won, so a
record changed again before the rejection (created then edited, deleted then created again,
another field edited) made `resolve` refuse though nothing had changed since (session 10's
note). The fallback (`core.satellite.conflicts.seen_of`) is never after the rejection: a
colleague's change after it is still refused. Queues made the old way: a real rejection,
its stored revision set back to 0 as an Outpost before session 10 left it. Real satellites
(SQLite in tmp_path), a real hub on 127.0.0.1, the real CLI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.errors import StaleConflictError
from core.model import Action, Cmd
from core.satellite.api import Keep, ReceiptState
from core.satellite.conflicts import conflict_fields
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_cli import cli
from tests.satellite.test_stale_theirs import SITE, sync


def made_old(data: Path) -> int:
    """The rejected receipts of ``data`` as an Outpost before session 10 stored them."""
    db = sqlite3.connect(data / "satellite.db")
    with db:
        n = db.execute("UPDATE sat_receipt SET rev = 0 WHERE state = 'rejected'").rowcount
    db.close()
    return n


def notes(hub: Hub, key: str) -> object:
    st = hub.ledger.state(SITE, key)  # type: ignore[attr-defined]
    return None if st is None else st.get("notes")


async def rejected_after(tmp_path: Path, project: Project, hub: Hub, mine: Action,
                         theirs: list[Action], *, setup: bool = True) -> str:
    """A makes ``mine`` offline; B makes each of ``theirs`` and syncs after each; A syncs (a
    conflict); then the queue is made the old way. Returns the rejected uid; both closed."""
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    try:
        if setup:
            a.pub([Action(SITE, "r1", Cmd.NEW, {"name": "R1", "notes": "orig", "region": "N"})])
            await sync(a, hub)
            await sync(b, hub)
        a.pub([mine])
        for act in theirs:
            b.pub([act])
            await sync(b, hub)
        await sync(a, hub)
        [rc] = a.receipts([ReceiptState.REJECTED])
        assert rc.rev  # stored since session 10: what the old queue lacks
    finally:
        a.close()
        b.close()
    assert made_old(tmp_path / "a") == 1
    return rc.uid


CASES = {
    # B created the key too, then edited its record before A synced
    "created, then edited": (
        Action(SITE, "k9", Cmd.NEW, {"name": "A's", "notes": "mine"}),
        [Action(SITE, "k9", Cmd.NEW, {"name": "B's", "notes": "b1"}),
         Action(SITE, "k9", Cmd.MOD, {"notes": "b2"})], "k9", False),
    # B deleted the record, then created it again, before A synced
    "deleted, then created again": (
        Action(SITE, "r1", Cmd.MOD, {"notes": "mine"}),
        [Action(SITE, "r1", Cmd.DEL),
         Action(SITE, "r1", Cmd.NEW, {"name": "R1 again", "notes": "b-new"})], "r1", True),
    # B changed the field, then another field A did not touch, before A synced
    "changed, then another field": (
        Action(SITE, "r1", Cmd.MOD, {"notes": "mine"}),
        [Action(SITE, "r1", Cmd.MOD, {"notes": "X"}),
         Action(SITE, "r1", Cmd.MOD, {"region": "S"})], "r1", True),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_old_receipt_resolves_without_seen_when_nothing_changed_since(
        tmp_path: Path, project: Project, hub: Hub, case: str) -> None:
    mine, theirs, key, setup = CASES[case]
    uid = await rejected_after(tmp_path, project, hub, mine, theirs, setup=setup)
    a = Satellite(tmp_path / "a", project)
    try:
        rc = a.receipt(uid)
        assert rc is not None and rc.rev == 0  # as an old queue holds it
        rows = conflict_fields(a, rc)
        assert not any(f.since for f in rows), rows  # nothing is "changed since"
        assert a.resolve(uid, Keep.MINE)  # was: StaleConflictError, though nothing changed
        await sync(a, hub)
        assert notes(hub, key) == "mine"
    finally:
        a.close()


@pytest.mark.parametrize("case", list(CASES))
async def test_old_receipt_still_refused_after_a_later_change(
        tmp_path: Path, project: Project, hub: Hub, case: str) -> None:
    """The fallback never lets a colleague's change after the rejection be overwritten."""
    mine, theirs, key, setup = CASES[case]
    uid = await rejected_after(tmp_path, project, hub, mine, theirs, setup=setup)
    b = Satellite(tmp_path / "b", project)
    try:
        b.pub([Action(SITE, key, Cmd.MOD, {"notes": "b-later"})])
        await sync(b, hub)
    finally:
        b.close()
    a = Satellite(tmp_path / "a", project)
    try:
        await sync(a, hub)
        rc = a.receipt(uid)
        assert rc is not None and rc.rev == 0
        assert any(f.since == "changed" and f.theirs == "b-later"
                   for f in conflict_fields(a, rc))
        with pytest.raises(StaleConflictError, match=r"(?i)look at the conflict again"):
            a.resolve(uid, Keep.MINE)
        assert a.resolve(uid, Keep.MINE, seen=a.rev())  # on what it shows now: done
        await sync(a, hub)
        assert notes(hub, key) == "mine"
    finally:
        a.close()


async def test_old_receipt_cli_resolve_without_seen(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    mine, theirs, key, setup = CASES["created, then edited"]
    uid = await rejected_after(tmp_path, project, hub, mine, theirs, setup=setup)
    rc, _, err = await cli(tmp_path / "a", "resolve", uid, "--keep", "both")
    assert rc == 0, err
    a = Satellite(tmp_path / "a", project)
    try:
        await sync(a, hub)
        assert notes(hub, key) == "b2"  # theirs unchanged, mine under a new key
        assert not a.receipts([ReceiptState.REJECTED, ReceiptState.PENDING])
    finally:
        a.close()
