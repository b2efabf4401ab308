"""The connection status a reader sees beside the process that holds a data directory
(``core.satellite.holder``): a real holder process (`outpost sync`) against a real hub on
127.0.0.1, read by read-only `outpost status --json`; the status file's writer and reader."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Trans
from core.revision import format_rev, now_rev, parse_rev
from core.satellite.holder import (
    BEAT,
    STALE,
    STATUS_FILE,
    THROTTLE,
    HolderStatus,
    StatusWriter,
    read_status,
)
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_cli import ROOT, cli


async def _status(data: Path) -> dict[str, Any]:
    rc, out, err = await cli(data, "status")
    assert rc == 0, err
    st: dict[str, Any] = json.loads(out)
    return st


async def _until(data: Path, ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """`outpost status --json` until ``ok`` holds of it (the holder works meanwhile)."""
    st: dict[str, Any] = {}
    for _ in range(300):
        rc, out, err = await cli(data, "status")
        if rc != 0 and "is being created" in err:
            # the holder is still making satellite.db (slow on a loaded machine): the
            # reader says so and to retry, which is what this loop does
            await asyncio.sleep(0.1)
            continue
        assert rc == 0, err
        st = json.loads(out)
        if ok(st):
            return st
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {st}")


async def _holder(data: Path) -> asyncio.subprocess.Process:
    """`outpost sync` (continuous) on ``data``: the process that holds the directory."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "desktop.headless", "sync", "--data", str(data), cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)


async def test_a_reader_sees_the_holders_connection_and_never_a_dead_one_online(
        tmp_path: Path, project: Project) -> None:
    """Before: `outpost status` beside a syncing `outpost sync` said online false, no error,
    whatever the holder's state (it opens the replica read-only, without a sync machine)."""
    led = MemLedger(project)
    led.publish(Trans((Action("field.site", "s1", Cmd.NEW, {"name": "Alder"}),)), "office")
    a = tmp_path / "a"
    hub = Hub(led, port=0)
    await hub.start()
    holder: asyncio.subprocess.Process | None = None
    try:
        assert (await cli(a, "connect", hub.url))[0] == 0
        holder = await _holder(a)
        # last_sync once the reply is stored (session 10), a moment after online and hub_rev
        st = await _until(a, lambda s: s["online"] and s["hub_rev"] == format_rev(led.rev())
                          and s["last_sync"] is not None)
        assert st["last_error"] == ""
        h = st["holder"]
        assert h["pid"] == holder.pid and h["live"] is True and h["age_s"] < STALE
        assert st["since"] is not None and st["rev"] == format_rev(led.rev())
        # the holder crashes while online: never "online" from it again
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
        st = await _status(a)
        assert st["online"] is False
        assert st["holder"]["live"] is False and "is gone" in st["holder"]["why"]
        # a new holder, then the hub goes away: offline, with the holder's error
        holder = await _holder(a)
        await _until(a, lambda s: s["online"] and s["holder"]["pid"] == holder.pid)
        await hub.stop()
        st = await _until(a, lambda s: not s["online"] and s["last_error"] != "")
        assert st["holder"]["live"] is True and st["holder"]["pid"] == holder.pid
        # it stops cleanly: the record says so
        holder.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(holder.wait(), 60) == 0
        st = await _status(a)
        assert st["online"] is False and st["holder"]["why"] == "closed"
        # 'since' and 'reported' are revisions (ms since 0001-01-01): a record that is not
        # live gave them as Unix ms, printed as year 0057
        for when in (st["since"], st["holder"]["reported"]):
            assert abs(parse_rev(when) - now_rev()) < 300_000, when
    finally:
        if holder is not None and holder.returncode is None:
            holder.kill()
            await holder.wait()
        await hub.stop()


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def test_the_writer_writes_changes_at_once_progress_throttled_and_a_heartbeat(
        tmp_path: Path) -> None:
    path = tmp_path / STATUS_FILE
    clock = Clock()
    w = StatusWriter(path, clock, clock)
    on = HolderStatus(online=True, since=5, hub_rev=10, last_sync=7)
    w.offer(on)

    def rec() -> dict[str, Any]:
        got: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return got

    assert rec()["online"] is True and rec()["written"] == clock.t
    assert rec()["pid"] == os.getpid()
    clock.t += 0.1
    w.offer(HolderStatus(online=True, since=5, hub_rev=11, last_sync=8))  # held back
    assert rec()["hub_rev"] == 10
    assert abs(w.wait() - (THROTTLE - 0.1)) < 1e-6
    clock.t += THROTTLE
    w.offer(HolderStatus(online=True, since=5, hub_rev=11, last_sync=8))
    assert rec()["hub_rev"] == 11 and rec()["last_sync"] == 8
    clock.t += 0.1
    w.offer(HolderStatus(online=False, since=9, hub_rev=11, last_sync=8, last_error="gone"))
    assert rec()["online"] is False and rec()["last_error"] == "gone"  # at once
    assert abs(w.wait() - BEAT) < 1e-6
    written = rec()["written"]
    clock.t += BEAT
    w.offer(HolderStatus(online=False, since=9, hub_rev=11, last_sync=8, last_error="gone"))
    assert rec()["written"] == written + BEAT  # the heartbeat
    w.close()
    assert rec()["closed"] is True and rec()["online"] is False


def test_the_reader_believes_online_only_from_a_live_holder(tmp_path: Path) -> None:
    path = tmp_path / STATUS_FILE
    assert read_status(path) is None
    path.write_text("{not json", encoding="utf-8")
    assert read_status(path) is None
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    gone = child.pid  # a process that existed and ended (reaped)
    w = StatusWriter(path)
    w.offer(HolderStatus(online=True, last_error=""))
    rec = json.loads(path.read_text(encoding="utf-8"))
    hv = read_status(path, now=rec["written"] + 1, mono=rec["mono"] + 1)
    assert hv is not None and hv.live and hv.status.online
    # no heartbeat: not believed
    hv = read_status(path, now=rec["written"] + STALE + 1, mono=rec["mono"] + STALE + 1)
    assert hv is not None and not hv.live and "no word" in hv.why
    path.write_text(json.dumps({**rec, "pid": gone}), encoding="utf-8")
    hv = read_status(path, now=rec["written"] + 1, mono=rec["mono"] + 1)
    assert hv is not None and not hv.live and f"process {gone} is gone" == hv.why
    # another host's process cannot be asked: its heartbeat decides
    path.write_text(json.dumps({**rec, "pid": gone, "host": "elsewhere"}), encoding="utf-8")
    hv = read_status(path, now=rec["written"] + 1, mono=rec["mono"] + 1)
    assert hv is not None and hv.live
    hv = read_status(path, now=rec["written"] + STALE + 1, mono=rec["mono"] + STALE + 1)
    assert hv is not None and not hv.live


def test_a_damaged_record_is_never_believed_and_never_crashes_the_reader(
        tmp_path: Path) -> None:
    path = tmp_path / STATUS_FILE
    StatusWriter(path).offer(HolderStatus(online=True, last_error=""))
    rec = json.loads(path.read_text(encoding="utf-8"))
    # a pid os.kill cannot take raised OverflowError; a NaN time was "live" for ever
    for bad in ({"pid": 10**20}, {"pid": -1}, {"written": float("nan")},
                {"written": float("inf")}, {"mono": float("nan")}):
        path.write_text(json.dumps({**rec, **bad}), encoding="utf-8")
        assert read_status(path, now=rec["written"] + 1, mono=rec["mono"] + 1) is None, bad
    # written "in the future" (another host's clock, a damaged file): not live
    path.write_text(json.dumps({**rec, "written": rec["written"] + 10 * STALE,
                                "host": "elsewhere"}), encoding="utf-8")
    hv = read_status(path, now=rec["written"])
    assert hv is not None and not hv.live and "ahead" in hv.why



def test_a_wall_clock_set_back_changes_neither_the_heartbeat_nor_liveness(
        tmp_path: Path) -> None:
    """The wall clock set back an hour (NTP) while the holder runs. Before (session 14): the
    writer timed its heartbeat by the wall clock and wrote none for an hour, and a reader
    said "not live (its time is 3587 s ahead of this clock)" until the clock caught up."""
    path = tmp_path / STATUS_FILE
    wall, mono = Clock(), Clock()
    wall.t, mono.t = 1_800_000_000.0, 5_000.0
    w = StatusWriter(path, wall, mono)
    st = HolderStatus(online=True, since=5, hub_rev=10, last_sync=7)
    w.offer(st)
    rec = json.loads(path.read_text(encoding="utf-8"))
    wall.t -= 3600.0  # set back
    wall.t += 2.0
    mono.t += 2.0
    # the heartbeat is due BEAT seconds after the last write, not an hour later
    assert abs(w.wait() - (BEAT - 2.0)) < 1e-6
    # a reader on this host and boot, its wall clock set back too: the record is live
    hv = read_status(path, now=wall.t, mono=rec["mono"] + 2.0)
    assert hv is not None and hv.live and hv.status.online, hv
    assert abs(hv.age - 2.0) < 1e-6
    wall.t += BEAT
    mono.t += BEAT
    w.offer(st)
    again = json.loads(path.read_text(encoding="utf-8"))
    assert again["written"] == wall.t and again["mono"] == mono.t  # the heartbeat came
    # and a silent holder is still found out by the monotonic clock, whatever the wall says
    hv = read_status(path, now=again["written"], mono=again["mono"] + STALE + 1)
    assert hv is not None and not hv.live and "no word" in hv.why
    # another boot's monotonic time is no measure: the wall stamp decides
    path.write_text(json.dumps({**again, "boot": "another-boot"}), encoding="utf-8")
    hv = read_status(path, now=again["written"] + 1, mono=0.0)
    assert hv is not None and hv.live


async def _jumped(data: Path, flag: Path, *args: str) -> asyncio.subprocess.Process:
    """`outpost ARGS --data DATA` whose wall clock is set back an hour once ``flag`` exists
    (tests/support/jumpclock.py)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "tests" / "support" / "jumpclock.py"), *args, "--data",
        str(data), cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT),
                                  "JUMP_FILE": str(flag), "JUMP_BY": "3600"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def test_a_running_sync_stays_live_to_readers_after_the_clock_is_set_back(
        tmp_path: Path, project: Project) -> None:
    """A real `outpost sync` and `outpost status`, both with their wall clock set back an hour
    (NTP) while the sync runs online. Before (worst-day review 14): the status said "online:
    no ... not live (its time is 3587 s ahead of this clock)" for the next hour, the holder
    writing no heartbeat until its wall clock caught up."""
    led = MemLedger(project)
    a, flag = tmp_path / "a", tmp_path / "jump"
    hub = Hub(led, port=0)
    await hub.start()
    holder: asyncio.subprocess.Process | None = None
    try:
        assert (await cli(a, "connect", hub.url))[0] == 0
        holder = await _jumped(a, flag, "sync")
        before = await _until(a, lambda s: s["online"] and s["holder"]["pid"] == holder.pid)
        assert before["holder"]["live"] is True
        was = json.loads((a / STATUS_FILE).read_text(encoding="utf-8"))["written"]
        flag.touch()  # the clock is set back: in both processes
        reader = await _jumped(a, flag, "status", "--json")
        out, err = await asyncio.wait_for(reader.communicate(), 120)
        assert reader.returncode == 0, err
        st = json.loads(out)
        assert st["online"] is True and st["holder"]["live"] is True, st["holder"]
        # the holder's heartbeat goes on by its own (set back) clock: a record written after
        # the jump comes (a reader on another host judges by that stamp)
        rec: dict[str, Any] = {}
        for _ in range(150):  # bounded (30 s): the heartbeat is every BEAT (10) s
            await asyncio.sleep(0.2)
            rec = json.loads((a / STATUS_FILE).read_text(encoding="utf-8"))
            if rec["written"] < was - 3000:
                break
        assert rec["written"] < was - 3000 and rec["online"] is True, rec
    finally:
        if holder is not None and holder.returncode is None:
            holder.kill()
            await holder.wait()
        await hub.stop()
