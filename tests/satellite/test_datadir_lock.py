"""One process at a time opens a satellite's data directory (``DataDir.lock``).

The satellite keeps the replica's revision and the open part of the queue in memory: a second
process writing the same directory (the app and ``outpost sync`` at once) would leave the
first one's view and the base revision of its next edits stale. The second opener gets a clear
error and changes nothing; the lock goes with the process that held it, even on ``kill -9``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.app import WindowSpec, open_satellite

ROOT = Path(__file__).resolve().parents[2]

HOLDER = """
import sys, time
from core.satellite.satellite import Satellite
sat = Satellite(sys.argv[1])
print("open", flush=True)
time.sleep(120)
"""


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def test_a_second_opener_in_the_same_process_is_refused_until_the_first_closes(
        tmp_path: Path, project: Project) -> None:
    a = Satellite(tmp_path, project)
    try:
        a.pub([Action("field.site", "k1", Cmd.NEW, {"name": "Ridge"})])
        with pytest.raises(ConfigError) as ei:
            Satellite(tmp_path, project)
        msg = str(ei.value)
        assert str(tmp_path) in msg and "another Outpost process" in msg and "--data" in msg
        assert a.status().pending == 1  # the first one is untouched and still works
    finally:
        a.close()
    b = Satellite(tmp_path, project)  # free again once closed
    try:
        assert b.status().pending == 1
    finally:
        b.close()


def test_the_lock_is_released_when_opening_fails(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no schema"):
        Satellite(tmp_path)  # no schema stored, none given
    with pytest.raises(ConfigError, match="no schema"):
        Satellite(tmp_path)  # the same error again, not "in use"


def test_another_process_holds_it_until_it_is_killed(tmp_path: Path, project: Project) -> None:
    Satellite(tmp_path, project).close()  # stores the schema for the holder
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        before = _files(tmp_path)
        with pytest.raises(ConfigError, match="in use by another Outpost process"):
            Satellite(tmp_path, project)
        # the headless CLI says so on stderr, exits non-zero and changes nothing
        cli = subprocess.run([sys.executable, "-m", "desktop.headless", "pub", "--data",
                              str(tmp_path), "field.site", "-", "new", "name=X"],
                             env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert cli.returncode != 0
        assert "in use by another Outpost process" in cli.stderr and "--data" in cli.stderr
        assert _files(tmp_path) == before
        # nor does `outpost connect`: a running app would keep syncing with the old hub
        cli = subprocess.run([sys.executable, "-m", "desktop.headless", "connect", "--data",
                              str(tmp_path), "ws://127.0.0.1:9"],
                             env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert cli.returncode != 0 and "in use by another Outpost process" in cli.stderr
        assert _files(tmp_path) == before
        # nor the app opening a profile on it with another hub
        with pytest.raises(ConfigError, match="in use by another Outpost process"):
            asyncio.run(open_satellite(WindowSpec(tmp_path, hub="ws://127.0.0.1:9",
                                                  token="t0k3n")))
        assert _files(tmp_path) == before
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        sat = Satellite(tmp_path, project)  # the kernel dropped the dead holder's lock
        sat.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_satellite_closed_on_another_thread_frees_the_directory(tmp_path: Path,
                                                                  project: Project) -> None:
    opened: list[Satellite] = []
    t = threading.Thread(target=lambda: opened.append(Satellite(tmp_path, project)))
    t.start()
    t.join(30)
    opened[0].close()  # on this thread, not the one that opened it
    Satellite(tmp_path, project).close()
