"""The status bar with real widgets, the real satellite (SQLite in tmp_path) and a real hub
(websockets on 127.0.0.1 port 0): a sync problem reads whole (a short summary, the full text
one click or Ctrl+Shift+E away, rejections noticed without a popup), a catch-up shows
numbers, "Work offline" is kept across restarts, no warning icon at zero conflicts."""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from core.model import Action, Cmd, Trans
from core.satellite.api import SatStatus
from core.satellite.client import SyncClient
from core.satellite.machine import HUB_DB_DOWN, Backoff, hub_db_problem
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop import settings as app_settings
from desktop.format import stopped_for_good, sync_problem
from desktop.mainwindow import MainWindow
from desktop.sync import ClientSync
from desktop.widgets.statusbar import SyncStatusBar
from hubserver.cli import open_hub_ledger
from hubserver.server import Hub

SITE = "field.site"


@pytest.fixture
async def hub(tmp_path: Path, project: Project) -> AsyncIterator[Hub]:
    ledger = open_hub_ledger(str(tmp_path / "hub.sqlite"), project)
    ledger.publish(Trans((
        Action(SITE, "s1", Cmd.NEW, {"name": "Alder Creek", "region": "North"}),
        Action(SITE, "s2", Cmd.NEW, {"name": "Birch Hill", "region": "South"}),
    )), "office")
    async with Hub(ledger, port=0, anon_user="office", close_ledger=True) as h:
        yield h


@pytest.fixture
def qsettings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app's settings in a file of the test's own (not the user's)."""
    path = tmp_path / "settings.ini"
    monkeypatch.setattr(app_settings, "settings",
                        lambda: QSettings(str(path), QSettings.Format.IniFormat))
    return path


async def sync(sat: Satellite, hub: Hub, lim: int = 5000) -> None:
    await SyncClient(sat, hub.url, rnd=random.Random(0), lim=lim).sync_once(30)


async def until(cond: Any, what: str) -> None:
    """Run the asyncio loop (and Qt's events) until ``cond()``; bounded: 200 × 50 ms."""
    for _ in range(200):
        QApplication.processEvents()
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reached: {what}")


def popups() -> list[QMessageBox]:
    return [w for w in QApplication.topLevelWidgets()
            if isinstance(w, QMessageBox) and w.isVisible()]


async def test_a_rejected_edit_reads_whole_and_is_noticed_without_a_popup(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub,
        monkeypatch: pytest.MonkeyPatch) -> None:
    alerts: list[Any] = []
    monkeypatch.setattr(QApplication, "alert", staticmethod(lambda w, ms=0: alerts.append(w)))
    wins = []
    for name, value in (("a", "Alder A"), ("b", "Alder B")):  # the same field, offline
        sat = Satellite(tmp_path / name, project)
        await sync(sat, hub)
        w = MainWindow(sat, None, name)
        qtbot.addWidget(w)
        assert w.status.conflicts.text() == "Conflicts: 0"
        assert w.status.conflicts.icon().isNull()  # no warning at zero
        assert w.select_key("s1")
        w.form.set_value("name", value)
        w.save_action.trigger()
        wins.append(w)
    a, b = wins
    await sync(a.sat, hub)  # type: ignore[arg-type]
    b.show()
    qtbot.waitExposed(b)
    await sync(b.sat, hub)  # type: ignore[arg-type]
    full = b.sat.status().last_error
    assert full.startswith("rejected by the hub: ")  # the long text: uid, reason
    # the summary names the problem and the way to it; the count says it is new
    assert b.status.error.text() == "1 edit rejected by the hub: see Conflicts (Ctrl+Shift+C)"
    assert b.status.conflicts.text() == "Conflicts: 1 (1 new)"
    assert "background" in b.status.conflicts.styleSheet()
    assert not b.status.conflicts.icon().isNull()
    assert alerts == [b] and popups() == []  # the taskbar asks for attention; no dialog
    again = MainWindow(b.sat, None, "b")  # conflicts there at start are not new
    qtbot.addWidget(again)
    assert again.status.conflicts.text() == "Conflicts: 1"
    assert "background" not in again.status.conflicts.styleSheet() and alerts == [b]
    again.close()
    assert b.status.details.isVisible()
    qtbot.mouseClick(b.status.error, Qt.MouseButton.LeftButton)  # the whole text
    box = b.problem_box
    assert box is not None and box.isVisible() and not box.isModal()
    assert box.text() == b.status.error.text() and box.informativeText() == full
    box.close()
    b.activateWindow()
    qtbot.waitUntil(b.isActiveWindow)
    b.table.setFocus()
    qtbot.waitUntil(b.table.hasFocus)
    QTest.keySequence(b.table, "Ctrl+Shift+E")  # the same from the keyboard
    assert box.isVisible()
    box.close()
    qtbot.mouseClick(b.status.details, Qt.MouseButton.LeftButton)
    assert box.isVisible()
    opener = b._open_conflicts
    assert opener.isVisible()
    opener.click()  # "Open conflicts": the view; the count is no longer new
    assert b.conflicts_dialog is not None and b.conflicts_dialog.isVisible()
    assert b.status.conflicts.text() == "Conflicts: 1"
    assert "background" not in b.status.conflicts.styleSheet()
    b.conflicts_dialog.keep_theirs.click()
    assert b.status.conflicts.text() == "Conflicts: 0" and b.status.conflicts.icon().isNull()
    for w in wins:
        w.close()
        w.sat.close()  # type: ignore[attr-defined]


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


async def test_an_unreachable_hub_says_so_and_counts_down_to_the_retry(
        qtbot: Any, tmp_path: Path, project: Project) -> None:
    url = f"ws://127.0.0.1:{_closed_port()}"
    sat = Satellite(tmp_path / "a", project)
    sat.config = sat.config.with_hub(url)
    ctl = ClientSync(SyncClient(sat, url, rnd=random.Random(0), backoff=Backoff(20, 30),
                                open_timeout=2), lambda _e: None)
    w = MainWindow(sat, ctl)
    qtbot.addWidget(w)
    ctl.start()
    await until(lambda: "retrying" in w.status.error.text(), "a retry waiting")
    text = w.status.error.text()
    assert text.startswith(f"Hub unreachable: {url} — retrying in "), text
    secs = int(text.rsplit(" ", 2)[1])
    assert 1 <= secs <= 30
    assert w._retry_timer.isActive()  # counts down without a status notice

    def shown() -> int | None:
        t = w.status.error.text()
        return int(t.rsplit(" ", 2)[1]) if "retrying in" in t else None

    await until(lambda: (n := shown()) is not None and n < secs, "the countdown going down")
    w.refresh_status()
    text = w.status.error.text()
    box = w.show_sync_problem()
    assert box.text() == text
    assert f"cannot reach the hub at {url}" in box.informativeText()
    assert "outpost-hub serve" in box.informativeText()  # the fix
    assert not w._open_conflicts.isVisible()
    w.offline_action.trigger()  # working offline: no retry waits, none is announced
    assert "retrying" not in w.status.error.text()
    await ctl.stop()
    w.refresh_status()
    assert not w._retry_timer.isActive()  # stopped: nothing counts down
    w.close()
    sat.close()


def test_the_summaries_name_the_problem_in_a_few_words() -> None:
    uid1, uid2 = "019d4838-1111-7aaa-8bbb-0123456789ab", "019d4838-2222-7aaa-8bbb-0123456789ab"
    cases = {
        f"rejected by the hub: {uid1}: conflict; x: y; {uid2}: conflict":
            "2 edits rejected by the hub: see Conflicts (Ctrl+Shift+C)",
        "the hub at ws://h:1 refused the token (HTTP 401): check it with the hub operator":
            "Hub refused the token: File → Connection settings",
        "the hub's schema version 3 differs from this satellite's 2: sync stopped, ...":
            "Sync stopped: the hub has another schema",
        "the hub did not answer evt.sat within 60 s": "Hub not answering",
        "hub refused the edits: your token may only read; ask the hub operator for a writer "
        "token; the hub stored none of these edits":
            "Hub refused your edits (read-only): discard them, or use a writer token",
        "something odd: and the rest": "Something odd",
    }
    for err, want in cases.items():
        assert sync_problem(err) == want, err
    assert sync_problem("") == ""
    assert sync_problem("the hub did not answer stat within 60 s", 7.6) == (
        "Hub not answering — retrying in 8 s")
    # a stop for good is never "retrying"
    assert "retrying" not in sync_problem("this replica came from another ledger: ...", 5)


def test_a_catch_up_shows_how_many_events_their_rate_and_how_far(qtbot: Any) -> None:
    bar = SyncStatusBar()
    qtbot.addWidget(bar)
    bar.show()
    base, hub_rev = 10_000_000, 10_400_000
    st = SatStatus(online=True, syncing=True, rev=base, hub_rev=hub_rev)
    bar.show_status(st, now=100.0)  # the handshake: nothing yet
    assert not bar.progress.isVisible()
    bar.show_status(SatStatus(online=True, syncing=True, rev=base + 100_000, hub_rev=hub_rev,
                              progress=(12_000, 0)), now=108.0)
    assert bar.progress.isVisible()
    assert bar.progress.full_text() == "12,000 events"  # the rate in the tooltip (session 15)
    assert bar.progress.value() == 250 and bar.progress.maximum() == 1000
    assert bar.progress.toolTip().startswith("catching up: 12,000 events, 1,500/s; stored up to ")
    bar.show_status(SatStatus(online=True, rev=hub_rev, hub_rev=hub_rev,
                              progress=(40_000, 40_000)), now=120.0)
    assert not bar.progress.isVisible()


def test_a_catch_up_whose_size_the_hub_said_shows_of_n_and_the_time_left(qtbot: Any) -> None:
    """The hub's first reply says how many events the catch-up holds (total_max, session
    9): "of N" and the time left at the rate so far; all there: no "of"."""
    bar = SyncStatusBar()
    qtbot.addWidget(bar)
    bar.show()
    base, hub_rev = 10_000_000, 10_400_000
    bar.show_status(SatStatus(online=True, syncing=True, rev=base, hub_rev=hub_rev), now=100.0)
    bar.show_status(SatStatus(online=True, syncing=True, rev=base + 100_000, hub_rev=hub_rev,
                              progress=(12_000, 100_000)), now=103.53)
    # session 15: short in the bar (the rate wrapped it on two lines), whole in its tooltip
    assert bar.progress.full_text() == "12,000 of 100,000 events · 26 s left"
    assert "12,000 of 100,000 events, 3,399/s, about 26 s left" in bar.progress.toolTip()
    # the bar fills by events done / total (12%), not by the revision span (25%)
    assert bar.progress.value() == 120
    bar.show_status(SatStatus(online=True, syncing=True, rev=base + 100_000, hub_rev=hub_rev,
                              progress=(20_000, 1_000_000)), now=104.0)
    assert bar.progress.full_text() == "20,000 of 1,000,000 events · 4 min left"
    assert bar.progress.value() == 20
    bar.show_status(SatStatus(online=True, syncing=True, rev=hub_rev, hub_rev=hub_rev,
                              progress=(1_000_000, 1_000_000)), now=300.0)
    assert bar.progress.full_text() == "1,000,000 events"


def test_edits_going_out_show_in_the_bar_and_beside_the_pending_count(qtbot: Any) -> None:
    """A queue of edits being sent, no catch-up running: the bar says how many of them are
    synced and fills by that share, the pending count says it is going; none waiting: both
    as before (user review 13 F6, scale review 13: the pending count stood still 4.4 s with
    no word). Session 15: by the pending count falling (an edit is pending until the hub's
    copy of it is here), not by the hub's answers, which ran ahead ("Sending 2,800 of 3,000"
    with 1,900 pending), and the bar stays until they are here (it went with 200 left)."""
    bar = SyncStatusBar()
    qtbot.addWidget(bar)
    bar.show()
    bar.show_status(SatStatus(online=True, pending=6_000, sending=(0, 6_000)), now=1.0)
    assert bar.progress.isVisible() and bar.progress.full_text() == "0 of 6,000 edits synced"
    bar.show_status(SatStatus(online=True, pending=5_000, sending=(2_800, 6_000)), now=2.0)
    assert bar.progress.full_text() == "1,000 of 6,000 edits synced"
    assert bar.progress.value() == 167 and bar.progress.maximum() == 1000
    assert "the hub answered 2,800 of the 6,000" in bar.progress.toolTip()
    assert bar.pending.text() == "Pending: 5,000 (sending 2,800 of 6,000)"
    # every one answered: the bar stays while their copies arrive
    bar.show_status(SatStatus(online=True, pending=200, sending=(0, 0)), now=3.0)
    assert bar.progress.isVisible() and bar.progress.full_text() == "5,800 of 6,000 edits synced"
    assert "answered every one sent" in bar.progress.toolTip()
    bar.show_status(SatStatus(online=True, pending=0), now=4.0)
    assert not bar.progress.isVisible()
    assert bar.pending.text() == "Pending: 0"
    # an edit saved during an upload is part of it; some left that no longer fall (held
    # back): the bar goes UPLOAD_SETTLE_S after the last answer
    bar.show_status(SatStatus(online=True, pending=10, sending=(0, 10)), now=10.0)
    bar.show_status(SatStatus(online=True, pending=11, sending=(0, 11)), now=10.5)
    assert bar.progress.full_text() == "0 of 11 edits synced"
    bar.show_status(SatStatus(online=True, pending=3, sending=(0, 0)), now=11.0)
    assert bar.progress.full_text() == "8 of 11 edits synced"
    bar.show_status(SatStatus(online=True, pending=3), now=11.0 + SyncStatusBar.UPLOAD_SETTLE_S)
    assert not bar.progress.isVisible()
    # the connection lost: gone at once
    bar.show_status(SatStatus(online=True, pending=5, sending=(1, 5)), now=20.0)
    assert bar.progress.isVisible()
    bar.show_status(SatStatus(online=False, pending=5), now=20.5)  # sending (0, 0)
    assert not bar.progress.isVisible()


async def test_a_real_push_of_many_edits_shows_in_the_status_bar(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """300 edits queued offline go out in two requests (100, then 200): the window's bar
    says how many the hub answered of 300 while they go, and nothing once all are."""
    sat = Satellite(tmp_path / "b", project)
    await sync(sat, hub)
    sat.pub_many(([Action(SITE, f"p{i:04d}", Cmd.NEW, {"name": f"P {i}"})], None)
                 for i in range(300))
    w = MainWindow(sat, None, "b")
    qtbot.addWidget(w)
    bars: list[str] = []
    counts: list[str] = []

    def seen(ch: Any) -> None:
        if ch.status:
            counts.append(w.status.pending.text())
            if not w.status.progress.isHidden():
                bars.append(w.status.progress.full_text())

    sat.listen(seen)
    await sync(sat, hub)
    assert bars and all(s.endswith(" of 300 edits synced") for s in bars), bars
    assert any(c.endswith(" of 300)") and "(sending " in c for c in counts), counts
    w.refresh_status()
    assert w.status.progress.isHidden() and w.status.pending.text() == "Pending: 0"
    w.close()
    sat.close()


async def test_a_real_catch_up_in_batches_shows_counts_in_the_status_bar(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    c = Satellite(tmp_path / "c", project)
    for start in range(0, 900, 300):  # a batch holds whole transactions
        c.pub([Action(SITE, f"z{i:05d}", Cmd.NEW, {"name": f"Site {i}"})
               for i in range(start, start + 300)])
    await sync(c, hub)
    c.close()
    sat = Satellite(tmp_path / "b", project)
    w = MainWindow(sat, None, "b")
    qtbot.addWidget(w)
    seen: list[str] = []
    sat.listen(lambda ch: seen.append(w.status.progress.full_text())
               if ch.status and not w.status.progress.isHidden() else None)
    await sync(sat, hub, lim=200)  # a batch per transaction
    shown = [s for s in seen if s]
    assert shown and all(s.endswith((" events", " left")) for s in shown), seen
    # + 2 seeded; the hub's first reply said how many (session 9: "of N")
    assert any(s.startswith(("302 of 902 events", "602 of 902 events")) for s in shown), seen
    assert w.status.progress.isHidden()  # caught up
    w.close()
    sat.close()


async def test_work_offline_is_kept_across_restarts(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub, qsettings: Path) -> None:
    from desktop.app import WindowSpec, close_window, open_satellite, open_window

    spec = WindowSpec(tmp_path / "a", hub.url)

    async def start() -> MainWindow:
        w = open_window(await open_satellite(spec), spec)
        qtbot.addWidget(w)
        return w

    w = await start()
    await until(lambda: w.sat.status().online, "online")
    w.offline_action.trigger()  # Ctrl+Shift+O
    assert w.status.conn.text().startswith("Working offline")
    await close_window(w)
    w.close()
    kept = Satellite(spec.data_dir, read_only=True)  # kept in the directory itself
    assert kept.work_offline
    kept.close()

    w = await start()  # the next run opens offline, and shows it at once
    sync_handle = w.sync_handle  # type: ignore[attr-defined]
    assert w.status.conn.text().startswith("Working offline")
    assert w.status.offline.isChecked() and w.offline_action.isChecked()
    await asyncio.sleep(0.3)
    assert not sync_handle.running and not w.sat.status().online
    # another data directory is not offline
    other = WindowSpec(tmp_path / "other", hub.url)
    w2 = open_window(await open_satellite(other), other)
    qtbot.addWidget(w2)
    assert not w2.status.offline.isChecked() and w2.sync_handle.running  # type: ignore[attr-defined]
    await close_window(w2)
    w2.close()
    w.status.offline.click()  # untick: online, and the next run too
    await until(lambda: w.sat.status().online, "online")
    await close_window(w)
    w.close()
    w = await start()
    assert not w.status.offline.isChecked() and not w.offline_action.isChecked()
    assert w.sync_handle.running  # type: ignore[attr-defined]
    await close_window(w)
    w.close()


async def test_work_offline_with_no_hub_is_not_kept(
        qtbot: Any, tmp_path: Path, project: Project, qsettings: Path) -> None:
    """With no hub set, ticking "Work offline" flips back (there is nothing to go offline
    from), but the directory was recorded as offline: kept is what took effect."""
    from desktop.app import WindowSpec, open_window

    sat = Satellite(tmp_path / "a", project)
    w = open_window(sat, WindowSpec(tmp_path / "a"))
    qtbot.addWidget(w)
    w.status.offline.click()
    assert not w.status.offline.isChecked() and not sat.offline_mode
    assert not sat.work_offline
    w.close()
    sat.close()


async def test_work_offline_stops_the_retry_countdown_and_going_online_restarts_it(
        qtbot: Any, tmp_path: Path, project: Project) -> None:
    """The 1 s countdown timer refreshed the status once a second for nothing after "Work
    offline" (until the stopped client's task had ended): it stops at once now, and starts
    again with the first retry after going online."""
    url = f"ws://127.0.0.1:{_closed_port()}"
    sat = Satellite(tmp_path / "a", project)
    sat.config = sat.config.with_hub(url)
    ctl = ClientSync(SyncClient(sat, url, rnd=random.Random(0), backoff=Backoff(20, 30),
                                open_timeout=2), lambda _e: None)
    w = MainWindow(sat, ctl)
    qtbot.addWidget(w)
    ctl.start()
    await until(lambda: w._retry_timer.isActive(), "a retry counted down")
    w.offline_action.trigger()  # the client is being stopped: its retry time still set
    assert not w._retry_timer.isActive()
    refreshed: list[int] = []
    w._retry_timer.timeout.connect(lambda: refreshed.append(1))
    for _ in range(30):  # 1.5 s of Qt events: no tick
        QApplication.processEvents()
        await asyncio.sleep(0.05)
    assert refreshed == [] and not w._retry_timer.isActive()
    w.status.offline.click()  # online again: the next retry is counted down again
    await until(lambda: w._retry_timer.isActive() and "retrying" in w.status.error.text(),
                "the countdown again")
    await ctl.stop()
    w.close()
    sat.close()


async def test_a_message_leaves_the_status_in_view(qtbot: Any, tmp_path: Path,
                                                   project: Project) -> None:
    """A message (10 s for an error) hid the status bar's left side (online state, pending,
    conflicts, revision) while it showed; "Sync now" showed its icon only."""
    sat = Satellite(tmp_path / "a", project)
    sat.pub([Action(SITE, "s9", Cmd.NEW, {"name": "Ridge"})])
    w = MainWindow(sat, None)
    qtbot.addWidget(w)
    w.show()
    bar = w.status
    parts = (bar.conn, bar.hub, bar.hub_rev, bar.pending, bar.conflicts, bar.last_sync)
    assert all(p.isVisible() for p in parts)
    w.show_error("cannot save: the disk is full")
    QApplication.processEvents()
    assert bar.currentMessage() == "cannot save: the disk is full"
    assert all(p.isVisible() for p in parts), [p.objectName() or p.text() for p in parts
                                               if not p.isVisible()]
    assert bar.message.isVisible() and bar.message.text() == bar.currentMessage()
    assert bar.pending.text() == "Pending: 1"
    bar.clearMessage()
    assert bar.currentMessage() == "" and all(p.isVisible() for p in parts)
    # "Sync now" says what it is, beside its icon, and its tooltip names the shortcut
    sync = bar.sync
    assert sync.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonTextBesideIcon
    assert sync.width() > sync.fontMetrics().horizontalAdvance("Sync now") + 16
    assert "(F5)" in sync.toolTip()
    assert w.sync_action.shortcut().toString() == "F5"
    w.close()
    sat.close()


async def test_work_offline_is_kept_in_the_data_directory_and_outpost_status_reports_it(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub, qsettings: Path) -> None:
    """"Work offline" was kept in the user's Qt settings by the directory's path:
    `outpost status` could not report it, and the directory opened online for another
    account. It is kept in the directory now (the replica's sat_meta); the Qt settings'
    entry of sessions 5-8 moves there once."""
    from desktop.app import WindowSpec, close_window, open_satellite, open_window
    from tests.satellite.test_cli import cli

    spec = WindowSpec(tmp_path / "a", hub.url)
    sat = await open_satellite(spec)
    sat.close()
    # as the app of session 8 kept it
    old = QSettings(str(qsettings), QSettings.Format.IniFormat)
    old.setValue("offline/dirs", [str(spec.data_dir.resolve()), str(tmp_path / "elsewhere")])
    old.sync()

    async def start() -> MainWindow:
        w = open_window(await open_satellite(spec), spec)
        qtbot.addWidget(w)
        return w

    async def status() -> dict[str, Any]:
        rc, out, err = await cli(spec.data_dir, "status")  # beside the app, read-only
        assert rc == 0, err
        got: dict[str, Any] = json.loads(out)
        return got

    w = await start()
    assert w.status.offline.isChecked() and w.sat.offline_mode  # moved, and opens offline
    assert w.sat.work_offline
    left = QSettings(str(qsettings), QSettings.Format.IniFormat).value("offline/dirs")
    assert left in (str(tmp_path / "elsewhere"), [str(tmp_path / "elsewhere")])  # once
    assert (await status())["work_offline"] is True
    rc, out, _ = await cli(spec.data_dir, "status", json_out=False)
    assert rc == 0 and any(x.startswith("work_offline: yes (") for x in out.splitlines()), out
    w.status.offline.click()  # untick: online, kept so
    await until(lambda: w.sat.status().online, "online")
    assert (await status())["work_offline"] is False
    await close_window(w)
    w.close()
    w = await start()  # the old entry does not come back
    assert not w.status.offline.isChecked() and w.sync_handle.running  # type: ignore[attr-defined]
    w.offline_action.trigger()
    assert (await status())["work_offline"] is True
    await close_window(w)
    w.close()
    st = await status()  # no app: still kept
    assert st["work_offline"] is True


async def test_a_403_stops_the_apps_sync_says_why_and_sync_now_tries_again(
        qtbot: Any, tmp_path: Path, project: Project) -> None:
    """Review 10: the app retried a 403 (the hub's --allow-origin list, a proxy's rules) for
    ever, as the CLI did before session 10; a policy does not change by waiting. It stops
    now, as the CLI's continuous sync does: the status bar says the hub refused the
    connection and that Sync now tries again, the Sync problem box has the CLI's words and
    the app's fix, and Sync now asks once more. A real HTTP server on 127.0.0.1 answers 403
    as a proxy would."""
    asked: list[int] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        asked.append(1)
        body = b"Access denied by policy\n"
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    sat = Satellite(tmp_path / "a", project)
    sat.config = sat.config.with_hub(url)
    # a short backoff: without the stop, the retries would come at once and be counted
    ctl = ClientSync(SyncClient(sat, url, rnd=random.Random(0), backoff=Backoff(0.05, 0.1),
                                open_timeout=2), lambda _e: None)
    w = MainWindow(sat, ctl)
    qtbot.addWidget(w)
    try:
        ctl.start()
        await until(lambda: bool(asked) and not ctl.running, "sync stopped on the 403")
        assert ctl.refused() == 403
        w.refresh_status()
        text = w.status.error.text()
        assert text == ("Hub refused the connection (HTTP 403) — sync stopped; "
                        "Sync now (F5) tries again"), text
        assert not w._retry_timer.isActive()  # nothing counts down: nothing is retried
        box = w.show_sync_problem()
        assert box.text() == text
        info = box.informativeText()
        assert "refused the connection (HTTP 403 Forbidden): not a token problem" in info
        assert "--allow-origin list" in info and "Not tried again: a policy does not " \
            "change by waiting; once the hub (or the proxy) lets this computer through, use " \
            "Sync now (F5)." in info, info
        assert "outpost" not in info.replace("--allow-origin", ""), info  # no CLI command
        for _ in range(5):  # bounded: the loop runs while nothing more is asked
            await asyncio.sleep(0.1)
            QApplication.processEvents()
        assert len(asked) == 1  # once: not retried
        w.sync_action.trigger()  # Sync now: asked once more, and stopped again
        await until(lambda: len(asked) == 2 and ctl.refused() == 403 and not ctl.running,
                    "Sync now asking again")
        assert len(asked) == 2
    finally:
        await ctl.stop()
        w.close()
        sat.close()
        server.close()


def test_the_bar_text_fits_the_bar_in_a_wide_and_a_narrow_window(qtbot: Any) -> None:
    """Session 15 (screenshots of a 100,000-event catch-up): the bar's text wrapped on two
    lines in its 200 px (three in a narrow window), cut at both. Now the bar widens for its
    text where there is room, and a narrow one shows the share ("55% · 7 s left")."""
    from PySide6.QtWidgets import QMainWindow

    shown = {}
    for width in (1100, 800):
        w = QMainWindow()
        qtbot.addWidget(w)
        bar = SyncStatusBar()
        w.setStatusBar(bar)
        w.resize(width, 120)
        w.show()
        qtbot.waitExposed(w)
        base, hub_rev = 10_000_000, 10_400_000
        bar.show_status(SatStatus(online=True, syncing=True, rev=base, hub_rev=hub_rev,
                                  hub="ws://host:8765"), now=100.0)
        bar.show_status(SatStatus(online=True, syncing=True, rev=base + 100_000,
                                  hub_rev=hub_rev, hub="ws://host:8765",
                                  progress=(55_000, 100_000)), now=108.0)
        qtbot.waitUntil(lambda bar=bar: bar.progress.isVisible())
        p = bar.progress
        qtbot.waitUntil(lambda p=p: p.fontMetrics().horizontalAdvance(p.text()) + 16
                        <= p.width())
        shown[width] = p.text()
    assert shown[1100] == "55,000 of 100,000 events · 7 s left"
    assert shown[800] == "55% · 7 s left"


def test_the_hubs_database_failing_shows_in_the_bar_while_catching_up(qtbot: Any) -> None:
    """Cluster review 15: the hub's own database hung and the app said nothing but "catching
    up" (evt.stat's db was never read): the bar names it, the whole text a click away."""
    bar = SyncStatusBar()
    qtbot.addWidget(bar)
    bar.show()
    err = hub_db_problem({"db": "unavailable", "db_why": "it cannot be reached"})
    bar.show_status(SatStatus(online=True, syncing=True, rev=10_000, hub_rev=20_000,
                              last_error=err), now=100.0)
    assert bar.error.text() == "Hub's database unavailable: sync waits for it"
    assert bar.error.toolTip().startswith(f"{HUB_DB_DOWN} (it cannot be reached), the hub said")
    assert stopped_for_good(err) == ""  # it waits, never stopped for good
