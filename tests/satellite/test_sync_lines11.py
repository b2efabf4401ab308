"""Session 11 (safety review): `outpost sync --once` printed the same error on every retry (a
full disk while storing hub data: the identical "storing hub data failed: ... disk is full"
line 8 times within the timeout, then once more as the final error). A given error is said
once, a repeat only as a short "still failing (Nth try)", and the final error once. The disk
is a real file size limit (RLIMIT_FSIZE) on the child process; the hub a real one on
127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import resource
import sys
from pathlib import Path

from core.ledger.memory import MemLedger
from core.model import Action, Cmd
from core.satellite.client import SyncClient
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_cli import cli
from tests.support.procs import reap

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 256 * 1024
"""Largest file the child may write: the hub's data is several times this."""


def _small_disk() -> None:
    # Python ignores SIGXFSZ: a write past the limit fails (EFBIG) as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


async def _sync_on_small_disk(data: Path, *args: str) -> tuple[int, str]:
    # no .pyc written under the limit: CPython writes one cut short (a corrupt cache)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "desktop.headless", "sync", "--data", str(data), *args,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        preexec_fn=_small_disk)
    _, err = await reap(proc, 90)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def _fill(hub: Hub, project: Project, d: Path) -> None:
    other = Satellite(d, project)
    try:
        for j in range(6):
            other.pub([Action("field.site", f"s{j}-{i}", Cmd.NEW,
                              {"name": f"s{i}", "notes": "n" * 2000}) for i in range(100)])
        await SyncClient(other, hub.url).sync_once(60)
        assert other.status().pending == 0
    finally:
        other.close()


async def test_sync_once_says_a_repeated_storage_failure_once(
        tmp_path: Path, project: Project) -> None:
    a = tmp_path / "a"
    async with Hub(MemLedger(project), port=0) as hub:
        assert (await cli(a, "connect", hub.url))[0] == 0
        await _fill(hub, project, tmp_path / "other")
        rc, err = await _sync_on_small_disk(a, "--once", "--timeout", "6")
    assert rc == 1, err
    lines = err.splitlines()
    failed = [ln for ln in lines if "storing hub data failed" in ln]
    # the first failure (while it retries) and the final error: never the same line twice
    assert len(failed) == 2, err
    assert "retrying for up to 6 s" in failed[0], err
    assert "did not finish within 6 s" in failed[1], err
    assert len(lines) == len(set(lines)), err


async def test_continuous_sync_says_a_repeated_storage_failure_once(
        tmp_path: Path, project: Project) -> None:
    a = tmp_path / "a"
    async with Hub(MemLedger(project), port=0) as hub:
        assert (await cli(a, "connect", hub.url))[0] == 0
        await _fill(hub, project, tmp_path / "other")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "desktop.headless", "sync", "--data", str(a), cwd=ROOT,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            preexec_fn=_small_disk)
        assert proc.stderr is not None
        lines: list[str] = []
        try:
            # until the third failed try is said (bounded: 200 lines, 60 s)
            async with asyncio.timeout(60):
                while len(lines) < 200:
                    raw = await proc.stderr.readline()
                    if not raw:
                        break
                    lines.append(raw.decode().rstrip("\n"))
                    if "still failing" in lines[-1]:
                        break
        except TimeoutError:
            pass
        finally:
            proc.terminate()
            rest = await reap(proc, 60)
        lines += rest[1].decode().splitlines()
    err = "\n".join(lines)
    assert proc.returncode == 0, err
    failed = [ln for ln in lines if "storing hub data failed" in ln]
    assert len(failed) == 1 and "(retrying; Ctrl-C to stop)" in failed[0], err
    assert "outpost: still failing (3rd try)" in lines, err
    assert len(lines) == len(set(lines)), err
