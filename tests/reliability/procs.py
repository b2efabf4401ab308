"""Real processes for reliability tests: a hub (``outpost-hub serve``) and satellite drivers.

Every wait is bounded; every process started here is killed by the test that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
DRIVER = str(ROOT / "tests" / "reliability" / "satdriver.py")
SCHEMA = ROOT / "assets" / "demo-schema.toml"
SOAK = os.environ.get("OUTPOST_SOAK", "") not in ("", "0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env(crash: str = "") -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "OUTPOST_CRASH_AT"}
    e["PYTHONPATH"] = str(ROOT)
    if crash:
        e["OUTPOST_CRASH_AT"] = crash
    return e


class HubProc:
    """``outpost-hub serve`` on a fixed port (so it can be restarted at the same URL)."""

    def __init__(self, db: Path, port: int = 0, *, extra: Sequence[str] = ()):
        self.db = db
        self.port = port or free_port()
        self.extra = list(extra)
        self.proc: asyncio.subprocess.Process | None = None
        self.kills = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self, crash: str = "", timeout: float = 30.0) -> str:
        argv = [PY, "-m", "hubserver.cli", "serve", "--db", str(self.db), "--port",
                str(self.port), "--auth", "none", "--log-level", "ERROR", *self.extra]
        for attempt in range(50):  # the port may linger for a moment after a kill
            self.proc = await asyncio.create_subprocess_exec(
                *argv, cwd=ROOT, env=env(crash), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL)
            assert self.proc.stdout is not None
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if line.startswith(b"outpost-hub ready: "):
                return self.url
            await self.proc.wait()
            await asyncio.sleep(0.1 * (attempt + 1))
        raise RuntimeError(f"hub did not start on port {self.port}")

    async def kill(self) -> None:
        """kill -9."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            self.kills += 1
        await self.wait()

    async def wait(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            return await asyncio.wait_for(self.proc.wait(), timeout)
        return None

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def run(*argv: str, crash: str = "", timeout: float = 60.0) -> tuple[int, str, str]:
    """Run a satellite driver command; returns (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        PY, DRIVER, *argv, cwd=ROOT, env=env(crash), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check`` of an SQLite file (``"ok"`` when sound)."""
    con = sqlite3.connect(db)
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        con.close()


def ledger_uids(db: Path) -> dict[str, int]:
    """uid → number of audit rows carrying it, in a ledger file (hub or replica)."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT uid, count(*) FROM evt_audit WHERE uid != '' GROUP BY uid")
        return {str(u): int(n) for u, n in rows}
    finally:
        con.close()


def sat_db(data: Path) -> Path:
    """The satellite's SQLite file inside its data directory."""
    from core.satellite.config import DataDir

    return Path(DataDir(data).db_file)
