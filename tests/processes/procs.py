"""Real processes on 127.0.0.1: ``outpost-hub serve`` and the headless CLI
(``python -m desktop.headless``). Every wait is bounded; every process is killed by its test."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items()
         if k not in ("OUTPOST_CRASH_AT", "OUTPOST_CLOCK_OFFSET_MS")}
    e["PYTHONPATH"] = str(ROOT)
    e.update(extra)
    return e


class HubProc:
    """``outpost-hub serve`` on a fixed port, so a restart keeps the URL satellites stored."""

    def __init__(self, db: Path):
        self.db = db
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self, **extra_env: str) -> None:
        argv = [PY, "-m", "hubserver.cli", "serve", "--db", str(self.db), "--port",
                str(self.port), "--auth", "none", "--log-level", "ERROR"]
        for _ in range(50):  # the port may linger a moment after a kill
            self.proc = await asyncio.create_subprocess_exec(
                *argv, cwd=ROOT, env=env(**extra_env), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            assert self.proc.stdout is not None
            line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
            if line.startswith(b"outpost-hub ready: "):
                assert self.url in line.decode(), line
                return
            await self.wait(10)
            await asyncio.sleep(0.1)
        raise AssertionError(f"outpost-hub did not start on port {self.port}")

    async def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def kill9(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.wait(10)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await self.wait(15)
            except TimeoutError:
                await self.kill9()


async def cli(data: Path, *args: str, timeout: float = 60, **extra_env: str
              ) -> tuple[int, Any, str]:
    """Run one headless CLI command with ``--json``; returns (exit code, parsed out, stderr)."""
    argv = [PY, "-m", "desktop.headless", args[0], "--data", str(data), "--json", *args[1:]]
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, env=env(**extra_env), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    text = out.decode()
    parsed: Any = text
    with contextlib.suppress(ValueError):
        parsed = json.loads(text)
    return proc.returncode, parsed, err.decode()


async def spawn_sync(data: Path, **extra_env: str) -> asyncio.subprocess.Process:
    """``sync`` without ``--once`` (keeps syncing until killed)."""
    return await asyncio.create_subprocess_exec(
        PY, "-m", "desktop.headless", "sync", "--data", str(data), "--json", cwd=ROOT,
        env=env(**extra_env), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)


def receipts(data: Path) -> list[tuple[str, str, int, int]]:
    """(uid, state, rev, created) of every local transaction, read from the satellite's file."""
    with contextlib.closing(sqlite3.connect(data / "satellite.db")) as db:
        return [(u, s, int(r or 0), int(c)) for u, s, r, c in db.execute(
            "SELECT uid, state, rev, created FROM sat_receipt ORDER BY seq")]


def hub_uids(db: Path) -> dict[str, list[int]]:
    """uid → revisions of the audit rows naming it in the hub's SQLite ledger (one each, if
    exactly once holds), cross-checked with the applied-uid table."""
    with contextlib.closing(sqlite3.connect(db)) as c:
        out: dict[str, list[int]] = {}
        for uid, rev in c.execute("SELECT uid, rev FROM evt_audit WHERE uid IS NOT NULL "
                                  "AND uid != '' ORDER BY rev"):
            out.setdefault(uid, []).append(int(rev))
        applied = dict(c.execute("SELECT uid, rev FROM evt_uid"))
    assert {u: [r] for u, r in applied.items()} == out, "evt_uid and evt_audit disagree"
    return out


def hub_counts(db: Path) -> tuple[int, int]:
    """(events, distinct revisions) in the hub's ledger."""
    with contextlib.closing(sqlite3.connect(db)) as c:
        n, revs = c.execute("SELECT count(*), count(DISTINCT rev) FROM evt_event").fetchone()
    return int(n), int(revs)
