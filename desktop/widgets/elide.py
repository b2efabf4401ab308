"""A label cut with "…" where it has no room for its whole text (its minimum width stays
small), the whole text in its tooltip then; ``text()`` stays the whole text."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QHelpEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QToolTip, QWidget

__all__ = ["ElidedLabel"]


class ElidedLabel(QLabel):
    """One line of text, cut with "…" at the right when the label is narrower than it.

    ``min_chars``: the width it keeps however narrow its window (about this many average
    characters): a long text no longer sets the window's minimum width."""

    def __init__(self, text: str = "", parent: QWidget | None = None, *, min_chars: int = 12):
        super().__init__(text, parent)
        self.min_chars = min_chars

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        if not self.text():
            return hint
        fm = self.fontMetrics()
        cap = fm.averageCharWidth() * self.min_chars + fm.horizontalAdvance("…")
        return QSize(min(hint.width(), cap), hint.height())

    def shown_text(self) -> str:
        """The text as drawn: whole, or cut with "…" to the label's width."""
        m = self.contentsMargins()
        room = self.width() - m.left() - m.right() - 2 * self.margin()
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight,
                                             max(room, 0))

    def is_cut(self) -> bool:
        return self.shown_text() != self.text()

    def event(self, ev: QEvent) -> bool:
        if ev.type() == QEvent.Type.ToolTip and self.is_cut():
            # cut: the whole text first, then the label's own tooltip
            assert isinstance(ev, QHelpEvent)
            own = self.toolTip()
            QToolTip.showText(ev.globalPos(), self.text() + (f"\n\n{own}" if own else ""),
                              self)
            return True
        return super().event(ev)

    def paintEvent(self, ev: QPaintEvent) -> None:
        shown = self.shown_text()
        if shown == self.text():
            super().paintEvent(ev)
            return
        painter = QPainter(self)
        try:
            self.style().drawItemText(
                painter, self.contentsRect().adjusted(self.margin(), 0, -self.margin(), 0),
                int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                self.palette(), self.isEnabled(), shown, self.foregroundRole())
        finally:
            painter.end()
