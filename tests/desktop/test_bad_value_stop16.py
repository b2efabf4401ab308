"""Session 15's leftover: sync stopped for good on a hub's value of the wrong type
(``HubDataError`` from a hub serving this schema: broken data, or something between that
changes it) was not recognised by ``stopped_for_good``: the status line said "Storage error
on this computer", a pending record still said "waiting for the hub to accept it", and the
sync problem gave no step. Now it says sync is stopped and why, and the fix (the hub's data,
then Sync now; no new data directory). A real hub on 127.0.0.1 behind a real proxy that
changes a value, a real satellite, real widgets (offscreen)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from core.ledger import MemLedger
from core.model import Action, Cmd, Trans
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.format import stopped_for_good, sync_problem
from desktop.mainwindow import MainWindow
from desktop.sync import ClientSync
from hubserver.server import Hub
from tests.hub.conftest import request
from tests.satellite.test_cli import cli
from tests.satellite.test_hostile_values15 import SITE, mitm


async def test_pending_edit_after_a_bad_value_stop_says_sync_is_stopped(
        qtbot: Any, tmp_path: Path, project: Project) -> None:
    led = MemLedger(project)
    led.publish(Trans((Action(SITE, "s1", Cmd.NEW, {"name": "one", "lat": 1.0}),)), "ann")
    d = tmp_path / "sat"
    async with Hub(led, port=0) as hub:
        assert (await cli(d, "connect", hub.url))[0] == 0
        assert (await cli(d, "sync", "--once", "--timeout", "20"))[0] == 0
        async with connect(hub.url) as ws:  # a colleague's new record: the next reply's
            await request(ws, "evt.pub", {"acts": [
                {"top": SITE, "key": "s2", "cmd": "new", "arg": {"name": "two"}}]})

        def poison(ev: dict[str, Any]) -> None:
            ev["arg"] = {"name": "two", "lat": "north"}

        async with mitm(hub.url, poison) as url:
            sat = Satellite(d)
            try:
                sat.config = sat.config.with_hub(url)
                ctl = ClientSync(SyncClient(sat, url, rnd=random.Random(0)), lambda _m: None)
                w = MainWindow(sat, ctl)
                qtbot.addWidget(w)
                w.show()
                ctl.start()
                for _ in range(400):  # bounded: 20 s at most
                    if sat.status().last_error:
                        break
                    await asyncio.sleep(0.05)
                err = sat.status().last_error
                assert "with a value this satellite's schema refuses" in err, err
                assert sync_problem(err, retry_in=3) == (
                    "Sync stopped: the hub sent a value of the wrong type")  # no retry said
                assert stopped_for_good(err) == "the hub sent a value of the wrong type"
                w.refresh_status()
                assert "Storage error" not in w.status.error.text(), w.status.error.text()
                assert w.select_key("s1")
                w.form.set_value("name", "typed after the stop")
                w.save_action.trigger()
                qtbot.waitUntil(lambda: sat.status().pending == 1)
                qtbot.waitUntil(lambda: "Pending" in w.form.state.text())
                said = w.form.state.text()
                assert ("sync is stopped (the hub sent a value of the wrong type)" in said
                        and "until the hub's data is fixed" in said), said
                assert "waiting for the hub" not in said, said
                box = w.show_sync_problem()
                steps = " ".join(box.informativeText().split())
                assert "tell the hub's operator which event is wrong" in steps, steps
                assert "Sync now (F5) syncs again" in steps, steps
                assert "your 1 edit not synced stays here" in steps, steps
                assert "Data directory" not in steps and "outpost carry" not in steps, steps
                box.close()
                await ctl.stop()
            finally:
                sat.close()
