"""The app entry (``desktop.app.run_app``), run for real in a child process.

``run_app`` freezes what start-up built (``gc.freeze``) once its windows are open, so the
garbage collector's full collections during a catch-up visit only what was made since: with
~75,000 start-up objects each full collection held the GIL for 45-60 ms and stalled the UI
(``bench/desktop.py`` shows the lag; no timing is asserted here). The child process keeps the
freeze out of the pytest process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import asyncio, gc, sys
    from pathlib import Path
    from core.satellite.satellite import Satellite
    from desktop.app import WindowSpec, ensure_app, open_window, run_app
    from hubserver.cli import DEMO_SCHEMA
    from core.schema import load_project

    data = Path(sys.argv[1])
    Satellite(data, load_project(DEMO_SCHEMA)).close()
    app = ensure_app()
    seen = {}

    def check_and_quit() -> None:
        seen["frozen"] = gc.get_freeze_count()
        seen["alive"] = len(gc.get_objects())  # tracked objects not frozen
        app.closeAllWindows()

    async def start():
        seen["before"] = gc.get_freeze_count()
        spec = WindowSpec(data)
        w = open_window(Satellite(data), spec)
        w.show()
        asyncio.get_running_loop().call_later(0.2, check_and_quit)
        return [w]

    code = run_app(start)
    print("result", code, seen["before"], seen["frozen"], seen["alive"], flush=True)
""")


def test_run_app_freezes_the_start_up_heap_once_the_windows_are_open(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "sat")],
                          capture_output=True, text=True, env=env, timeout=120, cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    code, before, frozen, alive = (int(x) for x in proc.stdout.split("result", 1)[1].split())
    assert code == 0
    assert before == 0
    # the modules, the Qt wrappers and the window are frozen; few objects are left to scan
    assert frozen > 20_000, f"only {frozen} objects frozen"
    assert alive < frozen // 4, f"{alive} objects still tracked vs {frozen} frozen"
