"""The tests' child processes never outlive a wait that failed (session 12: a test stopped by
pytest-timeout, or a CLI call over its 60 s, left `outpost` running with its pipes open; the
next garbage collection, in another test, raised "unclosed transport" and "subprocess N is
still running" warnings there: an unraisable-exception failure of a test that did nothing
wrong). ``tests.support.procs.reap`` kills and reaps the child when the wait ends otherwise."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import warnings
from pathlib import Path

import pytest

from hubserver.server import Hub
from tests.satellite.test_cli import cli
from tests.support.procs import reap


def _children() -> set[int]:
    """This process's child processes (Linux: /proc), zombies included."""
    out: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with open(task / "children") as f:
            out.update(int(x) for x in f.read().split())
    return out


def _no_leftovers(before: set[int]) -> None:
    assert _children() <= before  # killed and reaped
    seen: list[str] = []
    hook = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(f"{u.exc_value!r} in {u.object!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            gc.collect()
    finally:
        sys.unraisablehook = hook
    assert seen == []


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
async def test_a_cli_call_over_its_timeout_leaves_no_process(tmp_path: Path, hub: Hub
                                                             ) -> None:
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    # continuous sync with a hub that never answers runs until stopped
    cfg = json.loads((a / "config.json").read_text())
    (a / "config.json").write_text(json.dumps({**cfg, "hub": "ws://127.0.0.1:9"}))
    before = _children()
    with pytest.raises(TimeoutError):
        await cli(a, "sync", timeout=2)
    _no_leftovers(before)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
async def test_a_cancelled_wait_leaves_no_process() -> None:
    """pytest-timeout's interrupt reaches a waiting test coroutine as a cancellation when
    pytest-asyncio closes its event loop."""
    before = _children()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(120)",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    task = asyncio.create_task(reap(proc, 120))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert proc.returncode is not None
    _no_leftovers(before)
