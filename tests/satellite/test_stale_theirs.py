"""A conflict's "theirs" is the hub's value now, and a resolution is refused when the record
changed after the conflict the user was shown (safety review 10, finding 1): keep mine used
to overwrite (or undo a delete of) a colleague's later change that the inbox never showed.
Real satellites (SQLite in tmp_path), a real hub on 127.0.0.1, the real CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from core.errors import StaleConflictError
from core.model import Action, Cmd
from core.revision import format_rev
from core.satellite.api import Keep, ReceiptState
from core.satellite.client import SyncClient
from core.satellite.conflicts import conflict_fields, since_sentences
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_cli import cli

SITE = "field.site"


async def sync(sat: Satellite, hub: Hub) -> None:
    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)


def hub_notes(hub: Hub) -> object:
    st = hub.ledger.state(SITE, "r1")  # type: ignore[attr-defined]
    return None if st is None else st.get("notes")


async def conflict_then_newer(tmp_path: Path, project: Project, hub: Hub,
                              newer: Action) -> tuple[Satellite, Satellite, str]:
    """A edits notes offline; B sets notes=X and syncs; A syncs: a conflict showing X.
    Then B makes ``newer`` and syncs; A syncs (its replica holds it)."""
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    a.pub([Action(SITE, "r1", Cmd.NEW, {"name": "R1", "notes": "orig"})])
    await sync(a, hub)
    await sync(b, hub)
    a.pub([Action(SITE, "r1", Cmd.MOD, {"notes": "mine"})])
    b.pub([Action(SITE, "r1", Cmd.MOD, {"notes": "X"})])
    await sync(b, hub)
    await sync(a, hub)
    [rc] = a.receipts([ReceiptState.REJECTED])
    assert [f.theirs for f in conflict_fields(a, rc)] == ["X"]
    b.pub([newer])
    await sync(b, hub)
    await sync(a, hub)
    return a, b, rc.uid


@pytest.mark.parametrize("newer", [
    Action(SITE, "r1", Cmd.MOD, {"notes": "Y-newer"}), Action(SITE, "r1", Cmd.DEL)])
async def test_keep_mine_never_overwrites_a_change_the_inbox_did_not_show(
        tmp_path: Path, project: Project, hub: Hub, newer: Action) -> None:
    a, b, uid = await conflict_then_newer(tmp_path, project, hub, newer)
    deleted = newer.cmd == Cmd.DEL
    try:
        rc = a.receipt(uid)
        assert rc is not None
        [f] = conflict_fields(a, rc)
        # the inbox shows the hub's value now, and says it changed after the conflict
        assert f.theirs == (None if deleted else "Y-newer")
        assert f.since == ("deleted" if deleted else "changed") and f.since_rev > f.rev
        said = since_sentences([f])
        assert len(said) == 1 and ("deleted" in said[0] if deleted else "changed" in said[0])
        # chosen on the conflict as it was (no revision seen: the conflict's): refused
        with pytest.raises(StaleConflictError, match=r"(?i)look at the conflict again"):
            a.resolve(uid, Keep.MINE)
        with pytest.raises(StaleConflictError):
            a.resolve(uid, {f"{SITE} r1": {"notes": Keep.MINE}}, seen=f.rev)
        rc2 = a.receipt(uid)
        assert rc2 is not None and rc2.state == ReceiptState.REJECTED  # nothing resolved
        await sync(a, hub)
        assert hub_notes(hub) == (None if deleted else "Y-newer")
        # chosen on what it shows now: done, knowingly
        assert a.resolve(uid, Keep.MINE, seen=a.rev())
        await sync(a, hub)
        assert hub_notes(hub) == "mine"
    finally:
        a.close()
        b.close()


async def test_keep_theirs_and_an_own_later_change_are_not_refused(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    """Keep theirs overwrites nothing: never refused; the user's own accepted change of the
    record after the conflict is no change they were not shown."""
    a, b, uid = await conflict_then_newer(
        tmp_path, project, hub, Action(SITE, "r1", Cmd.MOD, {"region": "B region"}))
    try:
        a.pub([Action(SITE, "r1", Cmd.MOD, {"name": "A name"})])
        await sync(a, hub)
        with pytest.raises(StaleConflictError, match=r"r1 was changed at .*"):
            a.resolve(uid, Keep.MINE)  # B's region change came after the conflict
        rc = a.receipt(uid)
        assert rc is not None
        seen_before_own = max(c.rev for c in rc.conflicts)
        b_rev = max(h.rev for h in a.history(SITE, "r1") if h.fields == ("region",))
        with pytest.raises(StaleConflictError):
            a.resolve(uid, Keep.MINE, seen=seen_before_own)
        assert a.resolve(uid, Keep.MINE, seen=b_rev)  # only A's own change is after it
        await sync(a, hub)
        assert hub_notes(hub) == "mine"
    finally:
        a.close()
        b.close()


async def test_keep_theirs_is_never_refused(tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b, uid = await conflict_then_newer(
        tmp_path, project, hub, Action(SITE, "r1", Cmd.MOD, {"notes": "Y-newer"}))
    try:
        assert a.resolve(uid, Keep.THEIRS) == ""
        await sync(a, hub)
        assert hub_notes(hub) == "Y-newer"
    finally:
        a.close()
        b.close()


async def test_cli_conflicts_shows_theirs_now_and_resolve_takes_the_revision_shown(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b, uid = await conflict_then_newer(
        tmp_path, project, hub, Action(SITE, "r1", Cmd.MOD, {"notes": "Y-newer"}))
    a.close()
    b.close()
    rc, out, _ = await cli(tmp_path / "a", "conflicts")
    [row] = json.loads(out)
    [f] = row["fields"]
    assert f["theirs"] == "Y-newer" and f["since"] == "changed"
    assert any("since the conflict" in t for t in row["explain"])
    rc, text, _ = await cli(tmp_path / "a", "conflicts", json_out=False)
    assert 'theirs "Y-newer"' in text and f"--seen {row['seen']}" in text
    rc, out, err = await cli(tmp_path / "a", "resolve", uid, "--keep", "mine")
    assert rc != 0 and "look at the conflict again" in err.lower() and "nothing was resolved" in err
    rc, out, err = await cli(tmp_path / "a", "resolve", uid, "--keep", "mine", "--seen", "nope")
    assert rc != 0 and "is not a revision" in err
    rc, out, err = await cli(tmp_path / "a", "resolve", uid, "--keep", "mine",
                             "--seen", row["seen"])
    assert rc == 0, err
    a = Satellite(tmp_path / "a", project)
    try:
        await sync(a, hub)
        assert hub_notes(hub) == "mine"
        assert format_rev(a.rev()) >= row["seen"]
    finally:
        a.close()


async def test_changed_since_marks_only_the_fields_changed_since(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    """"changed since" was set on every field of the record from its last change: a field
    nobody touched after the conflict read as moved (final review 10)."""
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    try:
        a.pub([Action(SITE, "r1", Cmd.NEW, {"name": "R1", "notes": "orig", "region": "N"})])
        await sync(a, hub)
        await sync(b, hub)
        a.pub([Action(SITE, "r1", Cmd.MOD, {"notes": "mine", "region": "S"})])
        b.pub([Action(SITE, "r1", Cmd.MOD, {"notes": "X"})])
        await sync(b, hub)
        await sync(a, hub)
        [rc] = a.receipts([ReceiptState.REJECTED])
        b.pub([Action(SITE, "r1", Cmd.MOD, {"notes": "Y"})])
        await sync(b, hub)
        await sync(a, hub)
        got = {f.field: f.since for f in conflict_fields(a, rc)}
        assert got == {"notes": "changed", "region": ""}
    finally:
        a.close()
        b.close()
