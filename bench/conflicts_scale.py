"""The conflicts view on a data directory with many conflicts (review "scale", session 13:
1,092 of them): CPU seconds of one refresh of its rows, of Keep mine on N selected edits (and
how many rebuilds it made), and of a save after the view was opened and closed once.

    QT_QPA_PLATFORM=offscreen PYTHONPATH=. .venv/bin/python bench/conflicts_scale.py DATA [N]
        ["TOP KEY"]

DATA is copied to a temporary directory first (it resolves N edits there); N defaults to 20;
TOP KEY names a record with a notes field outside the conflicts, saved after the view was
closed (default: the review's "field.site s099998").
CPU time (``time.process_time``) rather than wall time: the figures are for a shared
machine, run it alternating with the tree to compare against (PYTHONPATH) and say the load.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from core.model import Action, Cmd
from core.satellite.api import Keep, ReceiptState
from core.satellite.satellite import Satellite
from desktop.app import ensure_app
from desktop.models.conflicts import ConflictsModel
from desktop.widgets.conflicts import ConflictsDialog


def cpu(fn: Any) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def main() -> None:
    src = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    top, key = (sys.argv[3] if len(sys.argv) > 3 else "field.site s099998").split(" ", 1)
    app = ensure_app()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(src, data, ignore=shutil.ignore_patterns("outpost.lock"))
        sat = Satellite(data)
        try:
            rejected = sat.receipts([ReceiptState.REJECTED])
            model = ConflictsModel(sat)
            refresh = statistics.median(cpu(model.refresh) for _ in range(3))
            print(f"{len(rejected):,} conflicts, {model.rowCount():,} rows: refresh "
                  f"{refresh:.3f} s CPU (median of 3); load {os.getloadavg()[0]:.1f}",
                  flush=True)
            builds = [0]
            real = ConflictsModel._build

            def counted(self: ConflictsModel) -> Any:
                builds[0] += 1
                return real(self)

            ConflictsModel._build = counted  # type: ignore[method-assign]
            dlg = ConflictsDialog(sat)
            dlg.show()
            app.processEvents()
            dlg._confirm = lambda *_: True  # type: ignore[method-assign]
            dlg.select_uids(dlg.model.uids()[:n])
            builds[0] = 0
            took = cpu(lambda: (dlg.resolve_selected(Keep.MINE), app.processEvents()))
            print(f"Keep mine on {n} selected edits: {took:.2f} s CPU, {builds[0]} rebuilds; "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
            dlg.close()
            app.processEvents()
            builds[0] = 0
            took = cpu(lambda: (sat.pub([Action(top, key, Cmd.MOD, {"notes": "saved later"})]),
                                app.processEvents()))
            print(f"a save after the view was closed: {took:.3f} s CPU, {builds[0]} rebuilds; "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
            dlg.detach()
        finally:
            sat.close()


if __name__ == "__main__":
    main()
