"""``outpost demo``: a local hub (auth none, loopback, demo schema and data) in a subprocess,
its own data directory, and the app connected to it (``--two``: two windows, two replicas).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

from core.errors import ConfigError
from core.satellite.config import data_root

__all__ = ["HubProcess", "demo_dir", "start_hub"]

READY = "outpost-hub ready: "


def demo_dir() -> Path:
    """The demo's data directory (platformdirs user data dir + ``/demo``)."""
    return data_root() / "demo"


class HubProcess:
    """A running ``outpost-hub serve`` subprocess and its URL."""

    def __init__(self, proc: subprocess.Popen[str], url: str):
        self.proc = proc
        self.url = url

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the hub to finish (SIGTERM), kill it after ``timeout`` seconds."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()


def start_hub(data: Path, *, seed_demo: bool = True, timeout: float = 30.0) -> HubProcess:
    """Start ``outpost-hub serve --auth none --host 127.0.0.1 --port 0`` on ``data/hub.sqlite``
    and wait for its ready line.

    Raises:
        ConfigError: the hub exited or printed no ready line within ``timeout`` seconds (the
            message holds its last output); ``data`` is a file or cannot be written.
    """
    if data.exists() and not data.is_dir():
        raise ConfigError(f"{data} is a file, not a directory: pass --data DIR with a "
                          "directory for the demo (it is created when missing)")
    try:
        data.mkdir(parents=True, exist_ok=True)
        log_file = (data / "hub.log").open("a", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the demo's files in {data}: {exc.strerror or exc}: "
                          "pass --data DIR with a directory you can write") from exc
    cmd = [sys.executable, "-m", "hubserver.cli", "serve", "--auth", "none", "--host",
           "127.0.0.1", "--port", "0", "--db", str(data / "hub.sqlite")]
    if seed_demo:
        cmd.append("--seed-demo")
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log_file, text=True,
                                env=env)
    finally:
        log_file.close()
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sel.select(max(0.0, deadline - time.monotonic())):
                break
            line = proc.stdout.readline()
            if not line:  # its output closed: it is stopping
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
                break
            if line.startswith(READY):
                return HubProcess(proc, line[len(READY):].split()[0])
    finally:
        sel.close()
    exited = proc.poll() is not None  # it stopped by itself: its own error says why
    HubProcess(proc, "").stop()
    tail = ""
    with contextlib.suppress(OSError):
        tail = (data / "hub.log").read_text(encoding="utf-8")[-800:]
    said = [x[len("outpost-hub: "):] for x in tail.splitlines() if x.startswith("outpost-hub: ")]
    if exited and said:
        # e.g. a second `outpost demo` beside a running one: "the demo hub did not start
        # within 30 s" hid "already served by another hub" in the log (firstday review 14)
        other = (" (is another `outpost demo` running? Use its windows, or close it first)"
                 if "already served by another hub" in said[-1] else "")
        raise ConfigError(f"the demo hub could not start: {said[-1]}{other}")
    raise ConfigError(f"the demo hub did not start within {timeout:g} s (command: "
                      f"{' '.join(cmd)}); its log ends with:\n{tail}")


def run_demo(two: bool = False, data: Path | None = None) -> int:
    """Start the hub and open one (or two) windows on it; stop the hub when the app exits.

    When a window cannot be opened, the ones opened before it are closed (sync stopped,
    satellite closed) and the hub is stopped, on every path out of here."""
    from desktop.app import ensure_app

    base = data or demo_dir()
    # Qt first: when it cannot start (no display, a missing system library) it aborts the
    # process, and a hub started before would be left running with nobody to stop it
    ensure_app()
    hub = start_hub(base)
    try:
        from desktop.app import WindowSpec, open_windows, place_side_by_side, run_app
        from desktop.mainwindow import MainWindow

        print(f"outpost demo: hub at {hub.url}, data in {base}", flush=True)

        async def start() -> list[MainWindow]:
            specs = [WindowSpec(base / f"satellite-{i + 1}", hub.url, "",
                                f"demo — replica {i + 1}") for i in range(2 if two else 1)]
            wins = await open_windows(specs)
            place_side_by_side(wins)
            return wins

        return run_app(start, cleanup=hub.stop)
    finally:
        hub.stop()  # again when run_app did not get to it (stop() is idempotent)
