#!/usr/bin/env python3
"""Regenerate the README screenshots from the real app: docs/img/{main,conflicts,history}.png.

One command, offscreen (``QT_QPA_PLATFORM=offscreen`` is set when unset)::

    make screenshots        # or: .venv/bin/python scripts/screenshots.py [--out docs/img]

What it does: a real hub on 127.0.0.1 (port 0) with the demo schema and data (SQLite in a
temporary directory) and two users, alice (the office) and bob (a field laptop), each with a
token; a satellite for each. alice and bob edit one site in turn (the history shows both
names); then both change the same site's name and latitude while offline, alice syncs first,
so bob's edit comes back as a conflict. bob's window then runs its real sync client (as the
app does) until it is online and caught up, and the script grabs the main window, the
conflicts view and the history view (``QWidget.grab()``). Look at every PNG before
committing it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
from collections.abc import Callable
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
from desktop.sync import ClientSync  # noqa: E402
from hubserver.auth import Users  # noqa: E402
from hubserver.cli import DEMO_SCHEMA, open_hub_ledger, seed_demo  # noqa: E402
from hubserver.server import Hub  # noqa: E402


def settle(app: QApplication, rounds: int = 5) -> None:
    for _ in range(rounds):
        app.processEvents()


async def until(app: QApplication, cond: Callable[[], bool], what: str,
                seconds: float = 30.0) -> None:
    """Run asyncio (the sync client) and Qt's events until ``cond()``."""
    for _ in range(int(seconds / 0.05)):
        app.processEvents()
        if cond():
            return
        await asyncio.sleep(0.05)
    raise SystemExit(f"screenshots: timed out waiting for {what}")


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
        users = Users(Path(tmp) / "users.db")
        tokens = {name: users.add(name) for name in ("alice", "bob")}
        async with Hub(ledger, users=users, close_ledger=True) as hub:
            a = Satellite(Path(tmp) / "alice", project)
            b = Satellite(Path(tmp) / "bob", project)

            async def sync(s: Satellite, who: str) -> None:
                await SyncClient(s, hub.url, tokens[who], rnd=random.Random(0)).sync_once(30)

            await sync(a, "alice")
            await sync(b, "bob")
            site = a.keys("field.site")[2]
            # history: alice and bob edit one site in turn
            a.pub([Action("field.site", site, Cmd.MOD, {"region": "Upper Engadin"})])
            await sync(a, "alice")
            await sync(b, "bob")
            b.pub([Action("field.site", site, Cmd.MOD, {
                "notes": "Access by the lake path.\nGate code at the hut."})])
            await sync(b, "bob")
            await sync(a, "alice")
            # a conflict: both change the same site's name and latitude offline; alice first
            a.pub([Action("field.site", site, Cmd.MOD, {"name": "Lake meadow (office)",
                                                        "lat": 46.4001})])
            b.pub([Action("field.site", site, Cmd.MOD, {"name": "Lake meadow east",
                                                        "lat": 46.4012})])
            await sync(a, "alice")
            await sync(b, "bob")

            # bob's window, online: its real sync client runs as in the app
            b.config = b.config.with_hub(hub.url, tokens["bob"])
            client = SyncClient(b, hub.url, tokens["bob"], lim=1000)
            ctl = ClientSync(client)
            w = MainWindow(b, ctl, "field laptop")
            w.resize(1200, 750)
            w.show()
            ctl.start()
            await until(app, lambda: b.status().online and not b.status().syncing,
                        "bob's window to be online")
            w.select_topic("field.site")
            w.select_key(site)
            settle(app)
            await asyncio.sleep(0.3)
            settle(app)
            save(w, out / "main.png")

            dlg = w.show_conflicts()
            dlg.resize(1100, 400)
            settle(app)
            save(dlg, out / "conflicts.png")
            dlg.close()

            w.select_key(site)
            w.side.setCurrentWidget(w.history)
            w.history.select_row(1)  # bob's edit, under alice's latest: the record as of it
            settle(app)
            save(w, out / "history.png")
            await ctl.stop()
            w.close()
            a.close()
            b.close()
        users.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(shoot(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
