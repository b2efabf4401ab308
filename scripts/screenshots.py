#!/usr/bin/env python3
"""Regenerate the README screenshots from the real app: docs/img/{main,conflicts,history}.png.

Runs offscreen (``QT_QPA_PLATFORM=offscreen`` is set when unset): an in-process hub on
127.0.0.1 port 0 with the demo schema and data (SQLite in a temporary directory), two real
satellites, an edit of the same field in both while offline so the second one gets a
conflict; then grabs the main window, the conflicts view and the history view
(``QWidget.grab()``).

Usage: .venv/bin/python scripts/screenshots.py [--out docs/img]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from core.model import Action, Cmd  # noqa: E402
from core.satellite.client import SyncClient  # noqa: E402
from core.satellite.satellite import Satellite  # noqa: E402
from core.schema import load_project  # noqa: E402
from desktop.app import ensure_app  # noqa: E402
from desktop.mainwindow import MainWindow  # noqa: E402
from hubserver.cli import DEMO_SCHEMA, open_hub_ledger, seed_demo  # noqa: E402
from hubserver.server import Hub  # noqa: E402


def settle(app: QApplication, rounds: int = 5) -> None:
    for _ in range(rounds):
        app.processEvents()


def save(w: QWidget, path: Path) -> None:
    img = w.grab()
    if img.isNull() or not img.save(str(path)):
        raise SystemExit(f"could not save {path}")
    print(f"{path} {img.width()}x{img.height()}")


async def shoot(out: Path) -> None:
    app = ensure_app()
    app.setStyle("Fusion")
    project = load_project(DEMO_SCHEMA)
    with tempfile.TemporaryDirectory() as tmp:
        ledger = open_hub_ledger(str(Path(tmp) / "hub.sqlite"), project)
        seed_demo(ledger)
        async with Hub(ledger, port=0, anon_user="office", close_ledger=True) as hub:
            a = Satellite(Path(tmp) / "a", project)
            b = Satellite(Path(tmp) / "b", project)
            for s in (a, b):
                await SyncClient(s, hub.url, rnd=random.Random(0)).sync_once(30)
            site = a.keys("field.site")[2]
            # history: two accepted edits of one site
            for region, notes in (("Upper Engadin", "Access by the lake path."),
                                  ("Upper Engadin (north)", "Access by the lake path.\n"
                                   "Gate code at the hut.")):
                a.pub([Action("field.site", site, Cmd.MOD, {"region": region,
                                                            "notes": notes})])
                await SyncClient(a, hub.url, rnd=random.Random(0)).sync_once(30)
            await SyncClient(b, hub.url, rnd=random.Random(0)).sync_once(30)
            # a conflict: both change the same site's name and latitude offline
            a.pub([Action("field.site", site, Cmd.MOD, {"name": "Lake meadow (office)",
                                                        "lat": 46.4001})])
            b.pub([Action("field.site", site, Cmd.MOD, {"name": "Lake meadow east",
                                                        "lat": 46.4012})])
            await SyncClient(a, hub.url, rnd=random.Random(0)).sync_once(30)
            await SyncClient(b, hub.url, rnd=random.Random(0)).sync_once(30)
            # a pending, not yet synced edit in b
            obs = b.keys("field.obs")[0]
            b.pub([Action("field.obs", obs, Cmd.MOD, {"count": 12, "condition": "fair"})])

            b.config = b.config.with_hub(hub.url)
            w = MainWindow(b, None, "field laptop")
            w.resize(1200, 750)
            w.show()
            settle(app)
            w.select_key(site)
            settle(app)
            save(w, out / "main.png")

            dlg = w.show_conflicts()
            dlg.resize(1100, 300)
            settle(app)
            save(dlg, out / "conflicts.png")
            dlg.close()

            w.select_topic("field.site")
            w.select_key(site)
            w.side.setCurrentWidget(w.history)
            w.history.select_row(w.history.model.rowCount() - 1)
            settle(app)
            save(w, out / "history.png")
            w.close()
            a.close()
            b.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(shoot(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
