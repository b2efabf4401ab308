"""Firstday review 14: docs/desktop.md read as a change log, its shortcuts one long paragraph
mixed with review history. docs/guide.md is the user's guide; its shortcuts table must list
what the app's Help → Keyboard shortcuts lists (the real window's actions, offscreen), and
nothing the app does not have."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from PySide6.QtGui import QAction, QKeySequence

from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.mainwindow import MainWindow
from desktop.widgets.help import shortcut_rows
from tests.support.procs import ROOT

GUIDE = ROOT / "docs" / "guide.md"


def _guide_keys() -> set[str]:
    text = GUIDE.read_text(encoding="utf-8")
    table = text.split("## Keyboard shortcuts", 1)[1].split("\n## ", 1)[0]
    keys: set[str] = set()
    for line in table.splitlines():
        m = re.match(r"\| ([^|]+?) \| [^|]+ \|$", line)
        if m and m[1] not in ("keys", "---"):
            keys.update(k.strip() for k in m[1].split(" or "))
    return keys


def test_the_guides_shortcuts_are_the_apps(qtbot: Any, tmp_path: Path,
                                           project: Project) -> None:
    sat = Satellite(tmp_path / "s", project)
    try:
        w = MainWindow(sat, None, "t")
        qtbot.addWidget(w)
        menus = [a for m in w.menuBar().actions() if m.menu() is not None
                 for a in m.menu().actions() if not a.isSeparator()]
        rows = shortcut_rows([*menus, *w.findChildren(QAction)])
        app_keys = {k.strip() for _, keys in rows for k in keys.split(" or ")}
        guide = _guide_keys()
        assert "Ctrl+Q" in app_keys  # File → Quit has a key on every platform theme
        missing = app_keys - guide
        assert not missing, f"docs/guide.md lacks the app's shortcuts {sorted(missing)}"
        # the guide lists no key the app lacks (the date field's calendar keys are the
        # field's own: checked by name)
        extra = guide - app_keys - {"Alt+Down", "F4"}
        assert not extra, f"docs/guide.md lists keys the app does not have {sorted(extra)}"
        assert any(QKeySequence("Ctrl+Q") in a.shortcuts() for a in menus)
    finally:
        sat.close()


def test_the_readme_points_newcomers_to_the_guide() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/guide.md" in readme

