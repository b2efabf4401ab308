"""A hub whose publish never completes (its database write stuck on a lock) while its event
loop still answers pings: the satellite's request timeout must still fire, say so and retry
(final review 10: once any byte received restarted the request timers, the pongs to the
client's own pings kept a sync waiting for ever). Real websockets on 127.0.0.1."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from core.ledger import MemLedger
from core.model import Action, Cmd
from core.satellite import client as client_mod
from core.satellite.machine import Backoff
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver import pipeline
from hubserver.server import Hub


async def test_a_hub_that_answers_pings_but_not_the_request_times_out(
        tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_mod, "PING_INTERVAL", 0.3)
    monkeypatch.setattr(client_mod, "PING_TIMEOUT", 0.3)
    monkeypatch.setattr(pipeline, "submit", lambda hub, peer, job: None)  # never commits
    async with Hub(MemLedger(project), port=0) as hub:
        sat = Satellite(Path(tempfile.mkdtemp(dir=tmp_path)), project)
        try:
            sat.pub([Action("field.site", "s9", Cmd.NEW, {"name": "x"})])
            cl = client_mod.SyncClient(sat, hub.url, backoff=Backoff(0.05, 0.5), timeout=2.0)
            said = await cl.run_until(
                lambda: "did not answer" in (cl.machine.info.last_error or ""), 20.0)
            assert said, cl.machine.info.last_error
            assert sat.status().pending == 1  # kept, to be sent again
        finally:
            sat.close()
