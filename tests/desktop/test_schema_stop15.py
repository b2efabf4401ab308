"""Schema-change review 15 (finding 5): the app on a laptop's data directory after the hub's
schema changed. Sync stops for good; an edit saved afterwards was labelled "waiting for the
hub to accept it", and the sync problem gave only the command line's steps. The state line
now says sync is stopped and why, and the sync problem box gives the app's steps (a new
data directory in File → Connection settings, the token again, then `outpost carry`). A real
hub on 127.0.0.1 over a restored SQLite ledger, a real satellite, real widgets
(offscreen)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

from core.ledger import ops
from core.ledger.sql import SqlLedger
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project, parse_project
from desktop.mainwindow import MainWindow
from desktop.sync import ClientSync
from hubserver.cli import DEMO_SCHEMA
from hubserver.server import Hub
from tests.satellite.test_carry import pub_here, sync_here
from tests.satellite.test_cli import cli


async def test_pending_edit_after_a_schema_stop_says_sync_is_stopped(
        qtbot: Any, tmp_path: Path, project: Project) -> None:
    old = tmp_path / "old"
    led1 = SqlLedger(f"sqlite:///{tmp_path / 'hub1.db'}", project)
    try:
        async with Hub(led1, port=0) as hub1:
            assert (await cli(old, "connect", hub1.url))[0] == 0
            pub_here(old, "s1", "new", name="Ridge")
            await sync_here(old)
            ops.backup(led1, tmp_path / "b.ledger")
    finally:
        led1.close()
    v2 = parse_project(DEMO_SCHEMA.read_text().replace('label = "Sites"',
                                                       'label = "Field sites"'))
    led2 = ops.restore(tmp_path / "b.ledger", f"sqlite:///{tmp_path / 'hub2.db'}", v2)
    sat = Satellite(old)
    try:
        async with Hub(led2, port=0) as hub2:
            sat.config = sat.config.with_hub(hub2.url)
            ctl = ClientSync(SyncClient(sat, hub2.url, rnd=random.Random(0)), lambda _m: None)
            w = MainWindow(sat, ctl)
            qtbot.addWidget(w)
            w.show()
            w.resize(1200, 700)
            ctl.start()
            for _ in range(400):  # bounded: 20 s at most
                if sat.status().last_error:
                    break
                await asyncio.sleep(0.05)
            assert "schema version" in sat.status().last_error
            w.refresh_status()
            assert w.select_key("s1")
            w.form.set_value("notes", "typed after the stop")
            w.save_action.trigger()
            qtbot.waitUntil(lambda: sat.status().pending == 1)
            qtbot.waitUntil(lambda: "Pending" in w.form.state.text())
            said = w.form.state.text()
            assert "sync is stopped (the hub has another schema)" in said, said
            assert "waiting for the hub" not in said, said
            # shown whole: the longer line had the height of one, clipped to a sliver
            st = w.form.state
            await asyncio.sleep(0.5)
            assert st.height() >= st.heightForWidth(st.width()) > 20, st.height()
            box = w.show_sync_problem()
            steps = " ".join(box.informativeText().split())
            assert "File → Connection settings" in steps and "Data directory" in steps, steps
            assert "enter your token again" in steps, steps
            assert f"outpost carry {old} --data NEW_FOLDER" in steps, steps
            assert "with your 1 edit not synced" in steps, steps
            box.close()
            await ctl.stop()
    finally:
        sat.close()
        led2.close()
