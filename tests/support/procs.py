"""Real processes on 127.0.0.1 for the process, reliability, chaos and scale-out tests:
``outpost-hub serve`` (:class:`HubProc`), the headless CLI (:func:`cli`, :func:`spawn_sync`)
and the satellite driver ``tests/reliability/satdriver.py`` (:func:`run`); and readers of the
SQLite files they leave behind.

Every wait is bounded; every process started here is killed by the test that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
DRIVER = str(ROOT / "tests" / "reliability" / "satdriver.py")
READY = b"outpost-hub ready: "


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env(crash: str = "", **extra: str) -> dict[str, str]:
    """This process's environment for a child: no inherited crash point or clock offset,
    ``PYTHONPATH`` at the repository; ``crash`` sets ``OUTPOST_CRASH_AT``; ``extra`` is added."""
    e = {k: v for k, v in os.environ.items()
         if k not in ("OUTPOST_CRASH_AT", "OUTPOST_CLOCK_OFFSET_MS")}
    e["PYTHONPATH"] = str(ROOT)
    if crash:
        e["OUTPOST_CRASH_AT"] = crash
    e.update(extra)
    return e


class HubProc:
    """``outpost-hub serve --auth none`` on a fixed port, so a restart keeps the URL that
    satellites stored (``port=0``: a free one). ``db`` is an SQLite file or a database URL;
    ``extra`` is appended to the command line; with ``log`` the hub's stderr is appended to
    that file (else discarded)."""

    def __init__(self, db: Path | str, port: int = 0, *, extra: Sequence[str] = (),
                 log: Path | None = None, log_level: str = "ERROR"):
        self.db = db
        self.port = port or free_port()
        self.extra = list(extra)
        self.log = log
        self.log_level = log_level
        self.proc: asyncio.subprocess.Process | None = None
        self.kills = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has ended (None while it runs or before start)."""
        return None if self.proc is None else self.proc.returncode

    async def start(self, crash: str = "", timeout: float = 30.0) -> str:
        """Start and wait for the ready line; ``crash`` sets ``OUTPOST_CRASH_AT``. The URL."""
        argv = [PY, "-m", "hubserver.cli", "serve", "--db", str(self.db), "--port",
                str(self.port), "--auth", "none", "--log-level", self.log_level, *self.extra]
        for attempt in range(50):  # the port may linger for a moment after a kill
            with open(self.log, "ab") if self.log else contextlib.nullcontext(
                    asyncio.subprocess.DEVNULL) as err:
                self.proc = await asyncio.create_subprocess_exec(
                    *argv, cwd=ROOT, env=env(crash), stdout=asyncio.subprocess.PIPE,
                    stderr=err)
            assert self.proc.stdout is not None
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if line.startswith(READY):
                assert self.url in line.decode(), line
                return self.url
            await self.wait(10)
            await asyncio.sleep(0.1 * (attempt + 1))
        raise AssertionError(f"outpost-hub did not start on port {self.port}; log: {self.log}")

    async def kill(self) -> None:
        """kill -9 (counted in ``kills``), then reap."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            self.kills += 1
        await self.wait(10)

    async def wait(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            return await asyncio.wait_for(self.proc.wait(), timeout)
        return None

    async def stop(self) -> None:
        """SIGTERM; kill -9 if it has not exited within 15 s."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()  # not counted in ``kills``: those are the test's faults
                await self.wait(10)


async def reap(proc: asyncio.subprocess.Process, timeout: float) -> tuple[bytes, bytes]:
    """``proc.communicate()`` within ``timeout`` s; whatever ends the wait instead (the
    timeout, a cancellation: pytest-timeout's interrupt reaches a test's coroutine as one
    when its event loop is closed) kills and reaps the child first. Left running, the child
    and its pipes' transport were collected later, in another test, as "unclosed transport"
    and "subprocess N is still running" warnings: an unraisable-exception failure there
    (session 12: after test_carry's and test_restore_point's timeouts at load 12-19)."""
    try:
        return await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(BaseException):
                # reading to the end closes the pipes' transport (only a wait does not)
                await asyncio.wait_for(asyncio.shield(proc.communicate()), 30)
        raise


def reap_sync(proc: subprocess.Popen[Any], timeout: float) -> tuple[Any, Any]:
    """:func:`reap` for a ``subprocess.Popen``: killed and its pipes read to the end when the
    wait fails (``TimeoutExpired`` left the child running and its pipes open)."""
    try:
        return proc.communicate(timeout=timeout)
    except BaseException:
        proc.kill()
        with contextlib.suppress(BaseException):
            proc.communicate(timeout=30)
        raise


async def _communicate(argv: Sequence[str], env: dict[str, str], timeout: float
                       ) -> tuple[int, str, str]:
    """Run ``argv`` to its end (killed after ``timeout``); (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await reap(proc, timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def cli(data: Path, *args: str, timeout: float = 60, **extra_env: str
              ) -> tuple[int, Any, str]:
    """Run one headless CLI command with ``--json``; returns (exit code, parsed out, stderr)."""
    argv = [PY, "-m", "desktop.headless", args[0], "--data", str(data), "--json", *args[1:]]
    rc, text, err = await _communicate(argv, env(**extra_env), timeout)
    parsed: Any = text
    with contextlib.suppress(ValueError):
        parsed = json.loads(text)
    return rc, parsed, err


async def spawn_sync(data: Path, **extra_env: str) -> asyncio.subprocess.Process:
    """``sync`` without ``--once`` (keeps syncing until killed)."""
    return await asyncio.create_subprocess_exec(
        PY, "-m", "desktop.headless", "sync", "--data", str(data), "--json", cwd=ROOT,
        env=env(**extra_env), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)


async def run(*argv: str, crash: str = "", timeout: float = 60.0) -> tuple[int, str, str]:
    """Run a satellite driver command; returns (exit status, stdout, stderr)."""
    return await _communicate([PY, DRIVER, *argv], env(crash), timeout)


def sat_db(data: Path) -> Path:
    """The satellite's SQLite file inside its data directory."""
    from core.satellite.config import DataDir

    return Path(DataDir(data).db_file)


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check`` of an SQLite file (``"ok"`` when sound)."""
    with contextlib.closing(sqlite3.connect(db)) as c:
        return str(c.execute("PRAGMA integrity_check").fetchone()[0])


def receipts(data: Path) -> list[tuple[str, str, int, int]]:
    """(uid, state, rev, created) of every local transaction, read from the satellite's file
    (a receipt stored ``pending`` with a ``sat_acked`` row is accepted at its revision: the
    queue's layout since session 12, core/satellite/queue.py)."""
    with contextlib.closing(sqlite3.connect(sat_db(data))) as c:
        acked = c.execute("SELECT 1 FROM sqlite_master WHERE name = 'sat_acked'").fetchone()
        sql = ("SELECT uid, CASE WHEN k.seq IS NULL THEN state ELSE 'accepted' END, "
               "coalesce(k.rev, r.rev), created FROM sat_receipt r LEFT JOIN sat_acked k "
               "ON k.seq = r.seq AND r.state = 'pending' ORDER BY r.seq" if acked else
               "SELECT uid, state, rev, created FROM sat_receipt ORDER BY seq")
        return [(u, s, int(r or 0), int(t)) for u, s, r, t in c.execute(sql)]


def ledger_uids(db: Path) -> dict[str, int]:
    """uid → number of audit rows carrying it, in a ledger file (hub or replica)."""
    with contextlib.closing(sqlite3.connect(db)) as c:
        rows = c.execute("SELECT uid, count(*) FROM evt_audit WHERE uid != '' GROUP BY uid")
        return {str(u): int(n) for u, n in rows}


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
