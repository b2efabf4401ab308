"""Icons from ``desktop/data/icons`` (simple SVGs, package data: in an installed wheel too),
loaded once and cached."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

__all__ = ["ICON_DIR", "icon"]

ICON_DIR = Path(__file__).resolve().parent / "data" / "icons"


@cache
def icon(name: str) -> QIcon:
    """The icon ``desktop/data/icons/<name>.svg`` (an empty icon when the file is missing)."""
    path = ICON_DIR / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()
