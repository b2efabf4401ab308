"""Session 11: a SIGTERM (or Ctrl+C) that arrived before any window was open, while the app
fetched the schema from a slow hub, did not end the app: there was nothing to close, and
once the fetch gave up an error dialog waited for someone to answer. Now the start is
stopped: exit 0, nothing made in the data directory. The app runs offscreen in a child
process (signals matter); the slow hub is a WebSocket server on 127.0.0.1 that takes the
requests and answers none."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

ROOT = Path(__file__).resolve().parents[2]


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name != "outpost.lock"}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("made", [False, True], ids=["new", "empty"])
async def test_a_signal_while_the_schema_is_fetched_ends_the_app(
        tmp_path: Path, sig: signal.Signals, made: bool) -> None:
    """``made``: the data directory exists, empty: the app holds its lock while it
    fetches."""
    asked = asyncio.Event()
    frames: list[str] = []

    async def slow_hub(ws: ServerConnection) -> None:
        async for msg in ws:  # never answered: the hub is slow
            frames.append(str(msg))
            if "dom.project" in str(msg):
                asked.set()

    d = tmp_path / "sat"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "xdg"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if made:
        d.mkdir()  # chosen in the connection dialog: an empty folder
    before = _tree(d) if made else None
    async with serve(slow_hub, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "desktop.cli", "app", "--data", str(d),
            "--hub", f"ws://127.0.0.1:{port}", env=env, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            await asyncio.wait_for(asked.wait(), 60)  # the app is fetching the schema
            proc.send_signal(sig)
            # bounded: an app that ignores the signal is killed and the test fails
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 30)
        finally:
            if proc.returncode is None:  # it ignored the signal: not left running
                proc.kill()
                await proc.wait()
        assert proc.stderr is not None
        text = (await proc.stderr.read()).decode()
    assert proc.returncode == 0, text[-3000:]
    assert f"{sig.name} before a window opened: stopped, nothing changed" in text, text
    assert "Traceback" not in text, text[-3000:]
    if before is None:
        assert not d.exists()  # nothing half-made
    else:
        assert _tree(d) == before  # nothing changed
    saved = [p for p in (tmp_path / "config").rglob("*") if p.is_file()]
    assert saved == []  # no profile remembered for settings that never opened


FIRST_RUN = """
import sys
from desktop.widgets.connect import ConnectDialog
shown = ConnectDialog.showEvent
def show_event(self, ev):
    shown(self, ev)
    print("asked", flush=True)
ConnectDialog.showEvent = show_event
from desktop.cli import main
sys.argv = ["outpost", "app"]
sys.exit(main())
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_while_the_first_run_dialog_asks_ends_the_app(
        tmp_path: Path, sig: signal.Signals) -> None:
    """No profile yet: the first-run connection dialog, before the app's loop. Ctrl+C did
    nothing there (Qt's loop left Python no moment to handle it)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "xdg"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FIRST_RUN, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line == b"asked\n", line
        proc.send_signal(sig)
        with contextlib.suppress(TimeoutError):  # bounded: one that ignores it is killed
            await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.stderr is not None
    text = (await proc.stderr.read()).decode()
    assert proc.returncode == 0, text[-3000:]
    assert f"{sig.name} before a window opened: stopped, nothing changed" in text, text
    assert not (tmp_path / "xdg").exists() or not any((tmp_path / "xdg").rglob("*.db"))
    assert [p for p in (tmp_path / "config").rglob("*") if p.is_file()] == []
