"""The Qt runtime we pin keeps the app alive for long sessions.

PySide6 6.12.0 drops one reference to ``None`` on every timer event that qasync handles, so
after some thousands of event-loop iterations CPython aborts with ``Fatal Python error:
none_dealloc`` (seen first in ``bench/desktop.py`` during a 1,000,000-event catch-up). This
runs a qasync loop for many iterations in a child process (an abort must not take pytest
down) and checks that the process survives and ``None``'s reference count does not drift.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from PySide6.QtWidgets import QApplication
    import qasync

    app = QApplication([])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    async def main() -> None:
        for _ in range(200):          # warm up caches first
            await asyncio.sleep(0)
        start = sys.getrefcount(None)
        for _ in range(30000):
            await asyncio.sleep(0)
        for _ in range(300):
            await asyncio.to_thread(int)
        print("drift", sys.getrefcount(None) - start, flush=True)

    with loop:
        loop.run_until_complete(main())
""")


def test_qasync_loop_survives_many_iterations_without_refcount_drift() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, f"the Qt event loop aborted:\n{proc.stderr[-2000:]}"
    drift = int(proc.stdout.split("drift", 1)[1].split()[0])
    assert abs(drift) < 1000, f"None's reference count drifted by {drift} over 30,000 iterations"
