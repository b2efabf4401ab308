"""Session 12 (ops review): continuous `outpost sync` never said it recovered after the hub's
database came back. While the hub's database was down the satellite went online and offline
between failed tries (said once, then "still failing (3rd try)"); once the database was back
everything synced (status: 0 pending, online, no error), but the output still ended "still
failing (3rd try)" for 25 minutes: the "online with" line of the recovery equalled the one
left unsaid between failed tries. The hub is a real one on 127.0.0.1 whose ledger (our own
interface, the in-memory reference) refuses to store while "down"."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from core.errors import StorageError
from core.ledger.memory import MemLedger
from core.model import Trans
from core.revision import Rev
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_cli import cli
from tests.support.procs import reap

ROOT = Path(__file__).resolve().parents[2]


class _DownLedger(MemLedger):
    """The reference ledger with a database that can be down: publishing then fails as a
    lost database connection does."""

    down = True

    def publish_many(self, trans: Sequence[tuple[Trans, str]],
                     now: Rev | None = None) -> list:  # type: ignore[type-arg]
        if self.down:
            raise StorageError("the database server closed the connection", kind="unreachable")
        return super().publish_many(trans, now)


async def test_continuous_sync_says_it_is_online_again_after_the_hubs_database_is_back(
        tmp_path: Path, project: Project) -> None:
    a = tmp_path / "a"
    ledger = _DownLedger(project)
    async with Hub(ledger, port=0) as hub:
        assert (await cli(a, "connect", hub.url))[0] == 0
        for i in range(3):
            assert (await cli(a, "pub", "field.site", f"s{i}", "new",
                              f"name=offline {i}"))[0] == 0
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "desktop.headless", "sync", "--data", str(a), cwd=ROOT,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stderr is not None
        lines: list[str] = []
        back = -1  # the line after which the database was back
        try:
            # bounded: 200 lines, 90 s; the database comes back once the 3rd try is said
            async with asyncio.timeout(90):
                while len(lines) < 200:
                    raw = await proc.stderr.readline()
                    if not raw:
                        break
                    lines.append(raw.decode().rstrip("\n"))
                    if back < 0 and "still failing (3rd try)" in lines[-1]:
                        ledger.down = False
                        back = len(lines)
                    elif back >= 0 and "0 pending" in lines[-1]:
                        break
        except TimeoutError:
            pass
        finally:
            proc.terminate()
            rest = await reap(proc, 60)
        lines += rest[1].decode().splitlines()
        stored = len(ledger.states("field.site"))
    err = "\n".join(lines)
    assert back > 0, err
    assert stored == 3, err
    after = lines[back:]
    assert any(ln.startswith("outpost: online with") and "0 pending" in ln
               for ln in after), err
