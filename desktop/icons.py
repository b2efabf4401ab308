"""Icons from ``desktop/data/icons`` (simple SVGs, package data: in an installed wheel too),
loaded once and cached.

A line icon (undo, redo, history, settings, calendar, sync, restore) is drawn in
``currentColor``: it is drawn here in the palette's text colour, so it reads on a dark theme
as on a light one (review a11y 16: grey #444/#555 lines read 1.5-1.9:1 on a dark toolbar).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QObject, Qt
from PySide6.QtGui import QAction, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QAbstractButton

__all__ = ["ICON_DIR", "icon", "refresh_icons", "set_icon"]

ICON_DIR = Path(__file__).resolve().parent / "data" / "icons"
_SIZES = (16, 24, 32, 48, 64)  # drawn at these sizes (64: 32 px on a 2x screen)
_NAME = "outpost_icon"  # the property naming an action's or a button's icon


@cache
def _svg(name: str) -> str | None:
    path = ICON_DIR / f"{name}.svg"
    return path.read_text(encoding="utf-8") if path.exists() else None


def icon(name: str) -> QIcon:
    """The icon ``desktop/data/icons/<name>.svg`` (an empty icon when the file is missing);
    a line icon in the application palette's text colour as it is now."""
    text = _svg(name)
    if text is None:
        return QIcon()
    if "currentColor" not in text:
        return _file_icon(name)
    color = QGuiApplication.palette().color(QPalette.ColorRole.WindowText).name()
    return _drawn(name, color)


@cache
def _file_icon(name: str) -> QIcon:
    return QIcon(str(ICON_DIR / f"{name}.svg"))


@cache
def _drawn(name: str, color: str) -> QIcon:
    """The line icon ``name`` drawn in ``color``."""
    renderer = QSvgRenderer(QByteArray((_svg(name) or "").replace("currentColor", color)
                                       .encode()))
    out = QIcon()
    for size in _SIZES:
        pm = QPixmap(size, size)
        pm.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pm)
        try:
            renderer.render(painter)
        finally:
            painter.end()
        out.addPixmap(pm)
    return out


def set_icon(obj: QAction | QAbstractButton, name: str) -> None:
    """Give ``obj`` the icon ``name``, drawn again by :func:`refresh_icons`."""
    obj.setProperty(_NAME, name)
    obj.setIcon(icon(name))


def refresh_icons(root: QObject) -> None:
    """Draw again the icons given by :func:`set_icon` under ``root`` (its actions and
    buttons): the palette changed (a dark theme chosen while the app runs)."""
    for obj in (root, *root.findChildren(QObject)):
        name = obj.property(_NAME)
        if isinstance(name, str) and name and isinstance(obj, QAction | QAbstractButton):
            obj.setIcon(icon(name))
