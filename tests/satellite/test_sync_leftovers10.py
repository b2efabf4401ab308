"""Session 9's sync leftovers, fixed in session 10: ``last_sync`` only once the reply is
stored; ``sync --once --progress`` when the hub goes away mid catch-up; "of N" counting the
requested topics only; a 403 stops continuous sync."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from core.errors import HubError
from core.ledger.memory import MemLedger
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.satellite.config import sat_clock
from core.satellite.holder import STATUS_FILE, read_status
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.limits import Limits
from hubserver.server import Hub
from tests.reliability.test_storage import Fault, big_site, sync
from tests.satellite.test_cli import cli
from tests.support.procs import reap


async def test_last_sync_is_not_moved_by_a_reply_that_could_not_be_stored(
        tmp_path: Path, project: Project) -> None:
    """A full disk: the reply is received but not stored, so the replica did not sync; a
    fresh ``last_sync`` (in the status and in status.json) would say it had."""
    ticks = itertools.count(sat_clock(), 1000)  # every reading of the clock differs
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", project)
    async with Hub(led) as hub:
        sat = Satellite(tmp_path / "s", project, clock=lambda: next(ticks))
        other = Satellite(tmp_path / "o", project)
        f = Fault(sat.replica.ledger.engine)
        try:
            await sync(sat, hub.url).sync_once(20)
            synced = sat.status().last_sync
            assert synced
            for i in range(3):
                other.pub([big_site(f"from-other{i}")])
            await sync(other, hub.url).sync_once(20)
            f.disk_full()
            with pytest.raises(HubError):
                await sync(sat, hub.url).sync_once(2.0)
            st = sat.status()
            assert "disk is full" in st.last_error, st.last_error
            assert st.last_sync == synced
            held = read_status(tmp_path / "s" / STATUS_FILE)
            assert held is not None and held.status.last_sync == synced
            f.heal()
            await sync(sat, hub.url).sync_once(20)
            assert sat.status().last_sync > synced  # stored now: synced
        finally:
            sat.close()
            other.close()
    led.close()


async def test_sync_once_progress_says_when_the_hub_goes_away_mid_catch_up(
        tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub stops after the first of six replies: `sync --once --progress` said "caught up:
    100 of 600 events" (the catch-up bar ended, whatever the reason). It says the hub went
    away and exits 1 naming what to do."""
    ledger = MemLedger(project)
    for t in range(6):
        ledger.publish(Trans(tuple(
            Action("field.site", f"t{t}-{i:03d}", Cmd.NEW, {"name": f"Site {t}.{i}"})
            for i in range(100))), "office")
    gone: list[bool] = []
    send_sat = Hub._send_sat

    async def then_go_away(self: Hub, peer: Any, r: Any) -> None:
        await send_sat(self, peer, r)
        if not gone:  # after the first reply: stop listening, drop the connection (RST)
            gone.append(True)
            assert self._server is not None
            self._server.close(close_connections=False)
            peer.ws.transport.abort()

    monkeypatch.setattr(Hub, "_send_sat", then_go_away)
    async with Hub(ledger, port=0, limits=Limits(max_batch=100)) as hub:
        d = tmp_path / "a"
        assert (await cli(d, "connect", hub.url))[0] == 0
        rc, out, err = await cli(d, "sync", "--once", "--progress", "--timeout", "3",
                                 json_out=False)
    assert gone
    assert rc == 1, (out, err)
    assert "caught up:" not in err, err
    assert "the hub went away during the catch-up, after 100 of 600 events" in err, err
    assert "check that the hub runs" in err and "`outpost sync --once` again" in err, err


async def test_a_403_stops_sync_naming_the_policy_not_the_token(
        tmp_path: Path, project: Project) -> None:
    """Continuous `outpost sync` retried a 403 (the hub's --allow-origin list, a proxy's
    rules) for ever, and `sync --once` until its timeout: a policy does not change by
    waiting. Both stop now, exit 1, naming the cause and who can fix it. A real HTTP server
    on 127.0.0.1 answers 403 as a proxy would."""
    import asyncio
    import json

    from tests.satellite.test_cli import _spawn_sync

    asked: list[int] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        asked.append(1)
        body = b"Access denied by policy\n"
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    a = tmp_path / "a"
    async with Hub(MemLedger(project), port=0) as hub:
        assert (await cli(a, "connect", hub.url))[0] == 0
    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    cfg = json.loads((a / "config.json").read_text())
    (a / "config.json").write_text(json.dumps({**cfg, "hub": url}))
    try:
        proc = await _spawn_sync(a)
        try:
            _, err = await reap(proc, 60)
        finally:
            if proc.returncode is None:  # still retrying: not left running
                proc.kill()
                await proc.wait()
        text = err.decode()
        assert proc.returncode == 1, text
        assert "refused the connection (HTTP 403 Forbidden): not a token problem" in text
        assert "--allow-origin list" in text and "not tried again: a policy does not " \
            "change by waiting; once the hub (or the proxy) lets this machine through, run " \
            "`outpost sync` again" in text, text
        assert "(retrying" not in text and "outpost connect" not in text, text
        assert len(asked) == 1  # once: not retried
        rc, _, err2 = await cli(a, "sync", "--once", "--timeout", "60")
        assert rc == 1 and "HTTP 403" in err2 and "did not finish within" not in err2, err2
        assert "run `outpost sync --once` again" in err2 and "--token" not in err2, err2
        assert len(asked) == 2
    finally:
        server.close()
        await server.wait_closed()


async def test_sync_stopped_for_good_mid_catch_up_is_not_said_to_be_the_hub_going_away(
        tmp_path: Path, project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    """A catch-up that sync stops for good (hub data that can never be stored) is neither
    "caught up" nor "the hub went away": the command's error says why. A stand-in for the
    sync client (our interface) drives a real satellite's status through that."""
    from core.satellite.machine import Phase, SyncInfo
    from desktop.headless import _sync_once

    sat = Satellite(tmp_path / "s", project)

    class Client:
        refused = ""

        def __init__(self) -> None:
            self.machine = self

        phase = Phase.CATCHUP

        async def sync_once(self, timeout: float) -> None:
            sat.set_sync(SyncInfo(phase=Phase.CATCHUP, progress=(100, 600)))
            self.phase = Phase.STOPPED
            sat.set_sync(SyncInfo(phase=Phase.STOPPED, last_error="storing hub data failed"))
            raise HubError("sync with ws://hub stopped: storing hub data failed")

    try:
        with pytest.raises(HubError) as ei:
            await _sync_once(Client(), sat, 5.0, True)
    finally:
        sat.close()
    err = capsys.readouterr().err
    assert err.startswith("catching up: 100 of 600 events"), err
    assert "caught up:" not in err and "went away" not in err, err
    assert "went away" not in str(ei.value)
