"""Icons from ``assets/icons`` (simple SVGs), loaded once and cached."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

__all__ = ["ICON_DIR", "icon"]

ICON_DIR = Path(__file__).resolve().parent.parent / "assets" / "icons"


@cache
def icon(name: str) -> QIcon:
    """The icon ``assets/icons/<name>.svg`` (an empty icon when the file is missing)."""
    path = ICON_DIR / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()
