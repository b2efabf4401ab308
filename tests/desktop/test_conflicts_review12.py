"""User review 12, the conflicts view: Keep both says the new key of the user's record (the CLI
said "yours is now field.plot 7", the app nothing), and a record created under a taken key
names who last changed the values shown as theirs, not only its creator (in the app and in
`outpost conflicts`). Real widgets (offscreen), real satellites (SQLite), a real hub
(websockets on 127.0.0.1), the CLI as a subprocess."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from core.ledger.memory import MemLedger
from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient
from core.satellite.config import SatConfig
from core.satellite.satellite import Satellite
from core.schema import Project, parse_project
from desktop.mainwindow import MainWindow
from hubserver.auth import Users
from hubserver.server import Hub
from tests.desktop.test_conflicts_plain import SITE, dialog, sync
from tests.satellite.test_cli import cli
from tests.satellite.test_int_keys import ITEM, SCHEMA, items_hub


async def test_keep_both_says_the_new_key_of_yours(qtbot: Any, tmp_path: Path) -> None:
    p = parse_project(SCHEMA)
    async with items_hub(p, "3") as ihub:
        a, b = Satellite(tmp_path / "a", p), Satellite(tmp_path / "b", p)
        await sync(a, ihub)
        await sync(b, ihub)
        a.pub([Action(ITEM, "4", Cmd.NEW, {"name": "A4"})])
        b.pub([Action(ITEM, "4", Cmd.NEW, {"name": "B4"})])
        await sync(a, ihub)
        await sync(b, ihub)
        dlg = dialog(qtbot, b)
        w = dlg.parent()
        assert isinstance(w, MainWindow)
        new = dlg.new_key.text()
        assert new not in ("", "4")
        dlg.keep_both.click()
        assert b.receipts([ReceiptState.REJECTED]) == []
        said = f"Kept both: yours is now Items {new}; theirs stays Items 4."
        assert w.status.currentMessage() == said
        assert not dlg.later.isHidden() and dlg.later.text() == said
        rv = b.record(ITEM, new)
        assert rv is not None and rv.fields is not None and rv.fields["name"] == "B4"
        a.close()
        b.close()


async def test_theirs_names_who_changed_it_after_it_was_created(
        qtbot: Any, tmp_path: Path, project: Project) -> None:
    """carol creates the record "camp", bob renames it; alice, offline all along, created a
    "camp" too. Her conflict credited bob's name to carol ("created by carol")."""
    users = Users(tmp_path / "users.db")
    tokens = {u: users.add(u) for u in ("alice", "bob", "carol")}
    try:
        async with Hub(MemLedger(project), port=0, users=users) as h:
            def sat(name: str) -> Satellite:
                s = Satellite(tmp_path / name, project)
                s.data.save_config(SatConfig(hub=h.url, token=tokens[name]))
                s.config = s.data.load_config()
                return s

            async def go(s: Satellite) -> None:
                await SyncClient(s, h.url, s.config.token,
                                 rnd=random.Random(0)).sync_once(10)

            alice, bob, carol = sat("alice"), sat("bob"), sat("carol")
            for s in (alice, bob, carol):
                await go(s)
            alice.pub([Action(SITE, "camp", Cmd.NEW, {"name": "Alice camp"})])
            carol.pub([Action(SITE, "camp", Cmd.NEW, {"name": "Carol camp", "region": "N"})])
            await go(carol)
            await go(bob)
            bob.pub([Action(SITE, "camp", Cmd.MOD, {"name": "Bob's camp"})])
            await go(bob)
            await go(alice)
            assert alice.status().conflicts == 1
            dlg = dialog(qtbot, alice)
            m = dlg.model
            rows = {m.data(m.index(r, 1)): [m.data(m.index(r, c)) for c in range(8)]
                    for r in range(m.rowCount())}
            assert rows["Name"][4] == "Bob's camp", rows
            assert rows["Name"][5] == "bob (created by carol)"
            dlg.table.selectAll()
            text = dlg.details.text()
            assert "you and carol both created a record under this key" in text, text
            # every field of theirs (user review 13 F2: their region was not said)
            assert "theirs has Name “Bob's camp”, Region “N” (last changed by bob, " in text, \
                text
            alice.close()
            for s in (bob, carol):
                s.close()
            rc, out, err = await cli(tmp_path / "alice", "conflicts", json_out=False)
            assert rc == 0, err
            assert "theirs \"Bob's camp\" (created by carol at " in out, out
            assert ", last changed by bob at " in out
            assert 'theirs has name "Bob\'s camp", region "N" (last changed by bob, ' in out, out
            rc, out, _ = await cli(tmp_path / "alice", "conflicts")
            name = next(f for f in json.loads(out)[0]["fields"] if f["field"] == "name")
            assert name["usr"] == "carol" and name["last_usr"] == "bob"
    finally:
        users.close()
