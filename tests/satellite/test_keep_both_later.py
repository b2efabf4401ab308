"""Keep both moves the rejected transaction's own actions and refs to the new key; the
user's later edits of the record, saved apart before the conflict was known, stay on the key
(now their record: the hub took them there). `outpost resolve --keep both` names them, by
record, so the user can check and redo them (session 9's note, said since session 11). An
edit made after keep both on the old key is an edit of their record, as the user sees it.
Real satellites (SQLite in tmp_path), a real hub on 127.0.0.1, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_cli import cli
from tests.satellite.test_stale_theirs import SITE, sync


async def test_keep_both_names_later_edits_that_stayed_on_their_record(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    try:
        a.pub([Action(SITE, "k9", Cmd.NEW, {"name": "A's"})])  # offline, then edited again
        later = a.pub([Action(SITE, "k9", Cmd.MOD, {"region": "A-region"})])
        a.pub([Action(SITE, "other", Cmd.NEW, {"name": "unrelated"})])
        b.pub([Action(SITE, "k9", Cmd.NEW, {"name": "B's"})])
        await sync(b, hub)
        await sync(a, hub)
        [rc] = a.receipts([ReceiptState.REJECTED])
        rec = a.receipt(later)
        assert rec is not None and rec.state == ReceiptState.ACCEPTED  # on their record
    finally:
        a.close()
        b.close()
    code, out, err = await cli(tmp_path / "a", "resolve", rc.uid, "--keep", "both",
                               "--key", "k10")
    assert code == 0, err
    got = json.loads(out)
    assert got["new_keys"] == {f"{SITE} k9": "k10"}
    assert got["later_edits"] == {f"{SITE} k9": [later]}
    a = Satellite(tmp_path / "a", project)
    try:
        await sync(a, hub)
        led = hub.ledger  # type: ignore[attr-defined]
        assert led.state(SITE, "k10")["name"] == "A's"
        assert led.state(SITE, "k9")["name"] == "B's"
        assert led.state(SITE, "k9")["region"] == "A-region"  # what the text says: check it
        # editing k9 now edits their record, as the user sees it there
        view = a.record(SITE, "k9")
        assert view is not None and view.fields is not None and view.fields["name"] == "B's"
    finally:
        a.close()
    code, text, err = await cli(tmp_path / "a", "conflicts", json_out=False)
    assert code == 0 and "no conflicts" in text


async def test_keep_both_text_says_the_later_edit_did_not_move(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    a, b = Satellite(tmp_path / "a", project), Satellite(tmp_path / "b", project)
    try:
        a.pub([Action(SITE, "k9", Cmd.NEW, {"name": "A's"})])
        later = a.pub([Action(SITE, "k9", Cmd.MOD, {"region": "A-region"})])
        b.pub([Action(SITE, "k9", Cmd.NEW, {"name": "B's"})])
        await sync(b, hub)
        await sync(a, hub)
        [rc] = a.receipts([ReceiptState.REJECTED])
    finally:
        a.close()
        b.close()
    code, text, err = await cli(tmp_path / "a", "resolve", rc.uid, "--keep", "both",
                                "--key", "k10", json_out=False)
    assert code == 0, err
    assert f"{SITE} k9: 1 later edit of it you saved apart ({later}) did not move" in text
    assert f"make it again on {SITE} k10" in text
