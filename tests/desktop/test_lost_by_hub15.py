"""The app marks a record whose change the hub accepted, then lost (its file rolled back,
its clock behind: session 15), instead of "Synced with the hub.": real widgets (offscreen),
a real satellite, real hubs on 127.0.0.1 over a real SQLite file copied back."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from core.errors import HubError
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.mainwindow import MainWindow
from hubserver.server import Hub
from tests.satellite.test_hub_clock_rollback15 import SITE, lagging_rollback


async def test_the_form_says_lost_by_the_hub(qtbot: Any, tmp_path: Path,
                                             project: Project) -> None:
    led, clock, uid = await lagging_rollback(tmp_path, project)
    try:
        sat = Satellite(tmp_path / "x", project)
        try:
            async with Hub(led, port=0, clock=clock) as hub:
                with pytest.raises(HubError):
                    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(20)
            assert [r.uid for r in sat.lost_by_hub()] == [uid]
            w = MainWindow(sat, None, "t")
            qtbot.addWidget(w)
            w.select_topic(SITE)
            qtbot.waitUntil(lambda: w.records.rowCount() == 1)
            assert w.select_key("s1")
            said = w.form.state.text()
            assert said.startswith("⚠ Lost by the hub") and "--accepted" in said, said
            w.close()
        finally:
            sat.close()
    finally:
        led.close()
