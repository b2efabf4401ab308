"""Quitting the app while it syncs (user review 11, finding 1): File → Quit, closing the
window, Ctrl+C and SIGTERM each stop the sync and close the satellite, and the app exits 0.

Until session 11 Qt quit its loop as the last window closed, before ``run_app`` closed the
windows: every quit while online ended in "Event loop stopped before Future completed"
(exit 1), ``status.json`` kept ``"closed": false`` and the replica kept the last sync from
before the session (the next start, and ``outpost status``, showed an old "Synced …"). The
test before (test_app.py) passed only because its window had no sync.

Also (finding 5): Ctrl+C, Ctrl+C again, then SIGTERM, sent from outside the process as a
terminal and a session manager send them: the second Ctrl+C leaves the question open, and
SIGTERM ends the app with the typing kept as a draft (the app ignored it: the first
Ctrl+C's question ran inside the signal handler).

The real app (``python -m desktop.cli app --data DIR``) runs in a child process, offscreen,
against a real hub on 127.0.0.1; signals are sent to it with ``os.kill``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.model import Action, Cmd, Trans
from core.revision import format_rev
from core.satellite.client import SyncClient
from core.satellite.config import DataDir
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.drafts import DRAFTS_FILE, Draft, save_drafts
from desktop.mainwindow import MainWindow
from hubserver.cli import open_hub_ledger
from hubserver.server import Hub

ROOT = Path(__file__).resolve().parents[2]
SITE = "field.site"

# the real `outpost app --data DIR`; once its window is online with nothing pending (or,
# offline, shown) it prints "ready", then quits as argv[2] says ("menu": File → Quit,
# "close": the window's close button; "quit": QApplication.quit(), as a platform may call it;
# "type": types into a form; "wait": the parent sends signals)
CHILD = r"""
import os, sys
from PySide6.QtCore import QTimer
from desktop import app as appmod
from desktop.cli import main
from desktop.mainwindow import MainWindow

data, how = sys.argv[1], sys.argv[2]
orig = appmod.ensure_app
said = []

def ensure_app(argv=None):
    a = orig(argv)
    if said:
        return a
    said.append(0)

    def poll():
        ws = [w for w in a.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if not ws:
            return
        st = ws[0].sat.status()
        if not (st.offline_mode or (st.online and st.pending == 0)):
            return
        timer.stop()
        print("ready", flush=True)
        if how == "menu":
            quit_action = next(x for x in ws[0].menus[0].actions() if x.text() == "&Quit")
            QTimer.singleShot(100, quit_action.trigger)
        elif how == "close":
            QTimer.singleShot(100, ws[0].close)
        elif how == "quit":
            QTimer.singleShot(100, a.quit)
        elif how == "type":  # typing in a form, then nothing: the parent kills the app
            from PySide6.QtTest import QTest
            w = ws[0]
            w.select_topic("field.site")
            w.select_key("s1")
            notes = w.form.editors["notes"].widget
            notes.setFocus()
            QTest.keyClicks(notes, "typed before the crash")
            print("typed", flush=True)

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(100)
    a._test_timer = timer
    return a

appmod.ensure_app = ensure_app
sys.argv = ["outpost", "app", "--data", data]
rc = main()
print("main returned", rc, flush=True)
sys.exit(rc)
"""


@pytest.fixture
async def hub(tmp_path: Path, project: Project) -> AsyncIterator[Hub]:
    ledger = open_hub_ledger(str(tmp_path / "hub.sqlite"), project)
    ledger.publish(Trans((Action(SITE, "s1", Cmd.NEW, {"name": "Alder Creek"}),)), "office")
    async with Hub(ledger, port=0, anon_user="office", close_ledger=True) as h:
        yield h


async def synced(d: Path, project: Project, hub: Hub) -> Satellite:
    sat = Satellite(d, project)
    sat.config = sat.config.with_hub(hub.url)
    DataDir(d).save_config(sat.config)
    await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)
    return sat


_running: list[asyncio.subprocess.Process] = []


@pytest.fixture(autouse=True)
async def reap() -> AsyncIterator[None]:
    """A child a failed test left running is killed (an app that ignores SIGTERM too)."""
    yield
    while _running:
        proc = _running.pop()
        if proc.returncode is None:
            proc.kill()
            await asyncio.wait_for(proc.wait(), 30)


class Child:
    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.out: list[str] = []
        _running.append(proc)

    async def line(self, timeout: float = 60) -> str:
        assert self.proc.stdout is not None
        text = (await asyncio.wait_for(self.proc.stdout.readline(), timeout)).decode()
        self.out.append(text)
        return text

    async def end(self, timeout: float = 60) -> tuple[int, str, str]:
        try:
            out, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        except TimeoutError:
            self.proc.kill()
            out, err = await self.proc.communicate()
            return -999, "".join(self.out) + out.decode(), err.decode()
        assert self.proc.returncode is not None
        return self.proc.returncode, "".join(self.out) + out.decode(), err.decode()


async def start(tmp_path: Path, d: Path, how: str) -> Child:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "xdg"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(d), how, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    return Child(proc)


def closed(d: Path) -> bool:
    return bool(json.loads((d / "status.json").read_text(encoding="utf-8"))["closed"])


@pytest.mark.parametrize("how", ["menu", "close", "SIGINT", "SIGTERM", "quit", "offline"])
async def test_quitting_while_online_stops_the_sync_closes_the_satellite_and_exits_0(
        tmp_path: Path, project: Project, hub: Hub, how: str) -> None:
    d = tmp_path / "sat"
    sat = await synced(d, project, hub)
    before = sat.status()
    sat.pub([Action(SITE, "s1", Cmd.MOD, {"region": "sent by the app"})])  # the app sends it
    if how == "offline":
        sat.work_offline = True
    sat.close()
    child = await start(tmp_path, d, {"SIGINT": "wait", "SIGTERM": "wait",
                                      "offline": "menu"}.get(how, how))
    line = await child.line()
    assert line == "ready\n", line + (await child.end(5))[2][-3000:]
    if how.startswith("SIG"):
        child.proc.send_signal(getattr(signal, how))
    code, out, err = await child.end()
    assert code == 0 and "main returned 0" in out, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert closed(d)
    again = Satellite(d)
    try:
        st = again.status()
        if how == "offline":
            assert st.pending == 1  # nothing was sent
        else:
            # the session's sync is kept in the replica: `outpost status` and the next
            # start show it, not the one from before the session
            assert st.pending == 0
            assert st.last_sync > before.last_sync
            assert st.hub_rev == hub.ledger.rev()  # type: ignore[attr-defined]
    finally:
        again.close()


async def test_ctrl_c_twice_then_sigterm_ends_the_app_keeping_the_draft(
        tmp_path: Path, project: Project, hub: Hub) -> None:
    d = tmp_path / "sat"
    sat = await synced(d, project, hub)
    base = sat.status().rev
    sat.close()
    save_drafts(d / DRAFTS_FILE, [Draft(SITE, "s1", False, format_rev(base),
                                        {"notes": "typed, not saved"})])  # the form is dirty
    child = await start(tmp_path, d, "wait")
    assert await child.line() == "ready\n"
    assert (d / DRAFTS_FILE).exists()  # back in the form, and kept until saved
    child.proc.send_signal(signal.SIGINT)  # the question shows
    await asyncio.sleep(2)
    child.proc.send_signal(signal.SIGINT)  # does nothing: the question stays
    await asyncio.sleep(1)
    assert child.proc.returncode is None
    child.proc.send_signal(signal.SIGTERM)
    code, out, err = await child.end()
    assert code == 0 and "main returned 0" in out, err[-3000:]
    assert "a question is open in the window" in err  # what the second Ctrl+C said
    kept = json.loads((d / DRAFTS_FILE).read_text(encoding="utf-8"))
    assert [(k["key"], k["fields"]) for k in kept] == [("s1", {"notes": "typed, not saved"})]
    assert closed(d)
    again = Satellite(d)
    try:
        assert again.status().pending == 0  # nothing saved
    finally:
        again.close()


async def test_kill_9_after_typing_loses_none_of_it(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:
    """User review 11, finding 4: the draft was written only at SIGTERM, so a crash (kill -9,
    a flat battery) lost every unsaved edit. It is written a moment after each edit."""
    d = tmp_path / "sat"
    (await synced(d, project, hub)).close()
    child = await start(tmp_path, d, "type")
    assert await child.line() == "ready\n"
    assert await child.line() == "typed\n"
    for _ in range(100):  # bounded: 100 x 0.1 s (the draft is written 1 s after the edit)
        if (d / DRAFTS_FILE).exists():
            break
        await asyncio.sleep(0.1)
    child.proc.kill()  # SIGKILL: nothing of the app runs any more
    await child.end()
    assert child.proc.returncode == -signal.SIGKILL
    assert not closed(d)  # it did crash
    sat = Satellite(d)
    try:
        w = MainWindow(sat, None, "t")
        qtbot.addWidget(w, before_close_func=lambda w: [f.revert() for f in w.forms.values()])
        assert w.topic == SITE and w.form.key == "s1" and w.form.has_edits
        assert w.form.editors["notes"].get() == "typed before the crash"
        rv = sat.record(SITE, "s1")
        assert rv is not None and rv.fields is not None and rv.fields.get("notes") is None
        w.save()  # saved: the draft goes
        rv = sat.record(SITE, "s1")
        assert rv is not None and rv.fields is not None
        assert rv.fields["notes"] == "typed before the crash"
        assert not (d / DRAFTS_FILE).exists()
        w.close()
    finally:
        sat.close()
