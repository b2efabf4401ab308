"""Colours and font sizes that follow the user's theme and font (review a11y 16).

Until session 16 the app hard-coded colours made for a light theme: under a dark palette
pending and conflict rows kept the palette's light text on light backgrounds (1.05:1), the
red/amber/green texts of the form and the status bar were 2.2-2.9:1, the icons' grey lines
1.5-1.9:1. Here every colour is taken from the palette, or checked against it:

- :func:`tone`: a text colour of a kind (error, warning, ok) readable on the palette's
  background (at least 4.5:1, WCAG AA): the light theme's colour where it is, a light one on
  a dark background, the palette's own text colour as the last resort;
- :func:`tint`: a row background of a kind (the palette's base mixed with a hue), always
  paired with the palette's text colour (:func:`row_colors`);
- :func:`relative_font`: a font a factor of the widget's (the user's) size, not fixed px.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QWidget

__all__ = ["contrast", "relative_font", "retone", "row_colors", "set_tone", "tint", "tone",
           "tone_style"]

MIN_TEXT = 4.5
"""WCAG AA contrast of normal text."""

# kind: (a colour for a light background, one for a dark background)
_TONES = {
    "error": ("#b3261e", "#ff8a80"),
    "warn": ("#6e5400", "#ffd54f"),
    "ok": ("#1b5e20", "#81c995"),
}
# kind: the hue mixed into the palette's base for a row's background
_TINTS = {"pending": "#f0b400", "conflict": "#d9534f", "mine": "#2f6fb3",
          "theirs": "#2e8b57"}
_TINT_SHARE = 0.22


def _channel(v: float) -> float:
    v /= 255.0
    return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4


def luminance(c: QColor) -> float:
    """The relative luminance of ``c`` (WCAG 2)."""
    return (0.2126 * _channel(c.red()) + 0.7152 * _channel(c.green())
            + 0.0722 * _channel(c.blue()))


def contrast(a: QColor, b: QColor) -> float:
    """The WCAG contrast ratio of two colours (1 to 21)."""
    la, lb = luminance(a), luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def _palette(pal: QPalette | None) -> QPalette:
    return pal if pal is not None else QGuiApplication.palette()


def tone(kind: str, pal: QPalette | None = None,
         on: QPalette.ColorRole = QPalette.ColorRole.Window) -> QColor:
    """The text colour of ``kind`` ("error", "warn", "ok") on the palette's ``on`` colour:
    the first of the kind's light-theme and dark-theme colours that is readable on it (at
    least :data:`MIN_TEXT`), else the palette's text colour."""
    p = _palette(pal)
    bg = p.color(on)
    text = p.color(QPalette.ColorRole.WindowText if on == QPalette.ColorRole.Window
                   else QPalette.ColorRole.Text)
    for name in _TONES[kind]:
        c = QColor(name)
        if contrast(c, bg) >= MIN_TEXT:
            return c
    return text


def tone_style(kind: str, pal: QPalette | None = None, extra: str = "") -> str:
    """A style sheet giving a label the colour of ``kind`` ("": none, the palette's)."""
    if not kind:
        return extra
    return f"color: {tone(kind, pal).name()};" + (f" {extra}" if extra else "")


_TONE = "outpost_tone"  # the property holding a widget's tone ("kind;extra style")


def set_tone(w: QWidget, kind: str, extra: str = "") -> None:
    """Colour ``w``'s text as ``kind`` (with the ``extra`` style), again on a palette
    change (:func:`retone`)."""
    w.setProperty(_TONE, f"{kind};{extra}")
    w.setStyleSheet(tone_style(kind, extra=extra))


def retone(root: QWidget) -> None:
    """The tones set by :func:`set_tone` under ``root`` taken again from the palette as it
    is now (a dark theme chosen while the app runs)."""
    for w in (root, *root.findChildren(QWidget)):
        t = w.property(_TONE)
        if isinstance(t, str) and t:
            kind, _, extra = t.partition(";")
            w.setStyleSheet(tone_style(kind, extra=extra))


def tint(kind: str, pal: QPalette | None = None) -> QColor:
    """The background of a row of ``kind`` ("pending", "conflict", "mine", "theirs"): the
    palette's base with a share of the kind's hue (pale on a light theme, dark on a dark
    one), so the palette's text stays readable on it."""
    p = _palette(pal)
    base, hue = p.color(QPalette.ColorRole.Base), QColor(_TINTS[kind])
    s = _TINT_SHARE
    return QColor(round(base.red() * (1 - s) + hue.red() * s),
                  round(base.green() * (1 - s) + hue.green() * s),
                  round(base.blue() * (1 - s) + hue.blue() * s))


def row_colors(kind: str, pal: QPalette | None = None) -> tuple[QColor, QColor]:
    """(background, text) of a row of ``kind``: :func:`tint` and the palette's text colour
    (a background is never set without the text colour that goes with it)."""
    p = _palette(pal)
    return tint(kind, p), p.color(QPalette.ColorRole.Text)


def relative_font(widget: QWidget, factor: float, *, bold: bool = False) -> QFont:
    """``widget``'s font (the user's, as inherited) scaled by ``factor``: a size that follows
    the user's font instead of a fixed pixel size."""
    f = QFont(widget.font())
    if f.pointSizeF() > 0:
        f.setPointSizeF(f.pointSizeF() * factor)
    elif f.pixelSize() > 0:
        f.setPixelSize(max(1, round(f.pixelSize() * factor)))
    if bold:
        f.setWeight(QFont.Weight.DemiBold)
    return f
