"""Keyboard: the window's undo / redo reach it from a text field with nothing of its own to
undo.

Qt lets a focused text editor (``QLineEdit``, ``QPlainTextEdit``, the line edit inside a spin
box or date picker) claim Ctrl+Z and Ctrl+Shift+Z / Ctrl+Y (a ``ShortcutOverride``) even when
it has nothing to undo: the window's record undo then never ran while the cursor was in a
field, e.g. right after Ctrl+S reloaded the form (which clears the field's own history). With
:func:`undo_falls_through` installed, the field keeps the keys while it has typing of its own
to undo or redo, and lets them through to the window's actions otherwise.

Ctrl+Delete is the other way round: in every text editor it deletes the next word (Qt's
``DeleteEndOfWord``), but neither ``QLineEdit`` nor ``QPlainTextEdit`` claims it, so the
window's Delete (Ctrl+Delete) ran instead and deleted the whole record, the typing with it
(user review 12). The editors :func:`undo_falls_through` is installed on claim it: it deletes
the next word there, and the record is deleted from the table, the toolbar or Edit → Delete.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import QAbstractSpinBox, QLineEdit, QPlainTextEdit, QWidget

__all__ = ["undo_falls_through"]


def _own(w: QObject, redo: bool) -> bool | None:
    """Whether the editor ``w`` has typing of its own to undo (``redo``: redo); None when it
    is not a text editor."""
    if isinstance(w, QAbstractSpinBox):
        w = w.lineEdit()
    if isinstance(w, QLineEdit):
        return w.isRedoAvailable() if redo else w.isUndoAvailable()
    if isinstance(w, QPlainTextEdit):
        doc = w.document()
        return doc.isRedoAvailable() if redo else doc.isUndoAvailable()
    return None


class _FallThrough(QObject):
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            if event.matches(QKeySequence.StandardKey.DeleteEndOfWord) and _own(
                    obj, False) is not None:
                event.accept()  # claimed: the editor deletes the next word
                return True
            for std, redo in ((QKeySequence.StandardKey.Undo, False),
                              (QKeySequence.StandardKey.Redo, True)):
                if event.matches(std) or (redo and _is_ctrl_shift_z(event)):
                    if _own(obj, redo) is False:
                        event.ignore()
                        return True  # not claimed: the window's shortcut runs
                    break
        return False


def _is_ctrl_shift_z(event: QKeyEvent) -> bool:
    # the window binds Ctrl+Shift+Z to redo on every platform (docs/desktop.md)
    return QKeySequence(event.keyCombination()) == QKeySequence("Ctrl+Shift+Z")


def undo_falls_through(*widgets: QWidget) -> None:
    """Let the window's undo / redo through from these editors when they have nothing of
    their own to undo / redo, and keep Ctrl+Delete (delete the next word) theirs (see the
    module docstring)."""
    for w in widgets:
        f = _FallThrough(w)  # lives as long as the widget
        w.installEventFilter(f)
        if isinstance(w, QAbstractSpinBox):
            w.lineEdit().installEventFilter(f)
