#!/usr/bin/env python3
"""The app's File → Import CSV: the longest stall of the UI thread while it imports.

A real main window (offscreen) on a fresh satellite (SQLite) whose ``field.site`` holds
``--records`` records, its heap settled as the app settles it, File → Import CSV of a
``--rows``-row file of new records (key, name, region, lat, lon, notes), and a heartbeat
``QTimer`` every 5 ms recording the gaps between its ticks: the longest gap is the longest
time the window could not paint nor take a click.
Printed per round with the machine's load: the longest gap, the second longest, the gaps
over 100 ms, and the import's whole time. Then the refresh of the conflicts view (its model's
``refresh``) with ``--receipts`` accepted receipts and one rejected one, and the status read
(``Satellite.status``), each timed ``--rounds`` times.

``--root DIR``: run another checkout's ``core``/``desktop`` (e.g. ``/work/main``, or
``git worktree add DIR BASE``) with this script: the figures before a change. Prints figures;
never passes or fails.

Usage: .venv/bin/python bench/desktop_import.py [--rows 20000] [--rounds 3] [--root DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--rows", type=int, default=20_000)
ap.add_argument("--records", type=int, default=1_000, help="records already in the topic")
ap.add_argument("--receipts", type=int, default=20_000,
                help="accepted receipts for the conflicts view's refresh (0: skip it)")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
ARGS = ap.parse_args()
sys.path.insert(0, ARGS.root)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QTimer  # noqa: E402

from core.heap import settle_heap  # noqa: E402
from core.model import Action, Cmd, Conflict, Event, Trans  # noqa: E402
from core.revision import now_rev  # noqa: E402
from core.satellite.satellite import Satellite  # noqa: E402
from core.schema import load_project  # noqa: E402
from desktop.app import ensure_app  # noqa: E402
from desktop.mainwindow import MainWindow  # noqa: E402

PROJECT = load_project(Path(ARGS.root) / "assets" / "demo-schema.toml")
SITE = "field.site"


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def write_csv(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("key,name,region,lat,lon,notes\n")
        for i in range(n):
            f.write(f"n{i:07d},Site number {i},Region {i % 17},{(i % 90) + 0.25},"
                    f"{(i % 180) - 89.5},\"note {i}, checked\"\n")


def fill(sat: Satellite, n: int) -> None:
    r1 = max(now_rev() - 60_000, sat.rev() + 1)
    sat.replica.apply(r1, [Event(i + 1, r1, SITE, f"s{i:07d}", Cmd.NEW,
                                 {"name": f"Site {i}", "region": "North"}) for i in range(n)])


def import_round(tmp: Path, csv: Path) -> tuple[float, float, int, float]:
    app = ensure_app()
    sat = Satellite(tmp, PROJECT)
    fill(sat, ARGS.records)
    w = MainWindow(sat, None, "bench import")
    w.show()
    w.select_topic(SITE)
    for _ in range(50):
        app.processEvents()
    settle_heap()  # as the app does once its window is up (desktop/app.py)
    gaps: list[float] = []
    clock = QElapsedTimer()
    beat = QTimer()
    beat.setInterval(5)

    def tick() -> None:
        gaps.append(clock.nsecsElapsed() / 1e9)
        clock.restart()

    beat.timeout.connect(tick)
    done: list[bool] = []
    t0 = time.perf_counter()
    clock.start()
    beat.start()
    job = w.import_csv(str(csv))
    assert job is not None
    job.finished.connect(lambda ok, *_: done.append(ok))
    while not done:
        app.processEvents()
        time.sleep(0.001)
    whole = time.perf_counter() - t0
    beat.stop()
    tick()
    assert done[0], w.csv_box.text() if w.csv_box else "failed"
    w.close()
    w.deleteLater()
    app.processEvents()
    sat.close()
    gaps.sort(reverse=True)
    return gaps[0], gaps[1], sum(1 for g in gaps if g > 0.1), whole


def receipts_rounds(tmp: Path) -> None:
    """The conflicts view's refresh and the status read with ARGS.receipts accepted
    receipts and one rejected (a conflict with the last of them)."""
    from desktop.models.conflicts import ConflictsModel

    sat = Satellite(tmp, PROJECT)
    base = max(now_rev() - 600_000, sat.rev() + 1)
    q = sat.queue
    items = [(Trans((Action(SITE, f"s{i:07d}", Cmd.NEW, {"name": f"Site {i}"}),),
                    base=base, uid=f"u{i:07d}"), False, "", "", ()) for i in range(ARGS.receipts)]
    q.add_many(items)
    q.accept_many([(f"u{i:07d}", base + 1 + i) for i in range(ARGS.receipts)])
    last = base + ARGS.receipts
    rej = Trans((Action(SITE, "s0000000", Cmd.MOD, {"name": "Mine"}),), base=base,
                uid="rejected")
    q.add_many([(rej, False, "", "conflict",
                 (Conflict(SITE, "s0000000", Cmd.MOD, "field changed", ("name",),
                           {"name": "Theirs"}, rev=last, usr="me"),))], rev=last)
    m = ConflictsModel(sat)

    def with_token() -> None:  # "earlier, you" also reads the user of the last receipt
        plain = sat.config
        sat.config = plain.with_hub("ws://bench", token="bench-token")
        try:
            m.refresh()
        finally:
            sat.config = plain

    for name, fn in (("conflicts view refresh", m.refresh),
                     ("conflicts view refresh, a token", with_token), ("status read", sat.status)):
        times = []
        for _ in range(ARGS.rounds * 3):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        print(f"{name} ({ARGS.receipts:,} accepted receipts, 1 rejected): median "
              f"{statistics.median(times) * 1000:.2f} ms, min {min(times) * 1000:.2f} ms "
              f"({load()})")
    sat.close()


def main() -> None:
    print(f"# {platform.python_version()}, {os.cpu_count()} CPUs, code of {ARGS.root}")
    with tempfile.TemporaryDirectory() as td:
        csv = Path(td) / "import.csv"
        write_csv(csv, ARGS.rows)
        for r in range(ARGS.rounds):
            top, second, over, whole = import_round(Path(td) / f"sat{r}", csv)
            print(f"import of {ARGS.rows:,} rows: longest UI stall {top * 1000:.0f} ms, "
                  f"next {second * 1000:.0f} ms, {over} stalls over 100 ms, whole import "
                  f"{whole:.2f} s ({load()})")
        if ARGS.receipts:
            receipts_rounds(Path(td) / "receipts")


if __name__ == "__main__":
    main()
