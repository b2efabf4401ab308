"""The Help menu: Keyboard shortcuts (F1) and About; the filter box's own keys.

The shortcut list is made from the window's actions when it opens (every action with a
shortcut, as its menu names it), so it cannot drift from what the keys do; the few keys
that are no window action (the conflicts view's Keep both, the filter box's Down and Esc)
come from the constants their widgets use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from importlib import metadata

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.widgets.conflicts import BOTH_KEY

__all__ = ["FIELD_KEYS", "FILTER_KEYS", "HELP_KEY", "TABLE_KEYS", "FilterKeys",
           "ShortcutsDialog", "about_text", "shortcut_rows", "version"]

HELP_KEY = "F1"
"""Help → Keyboard shortcuts."""

FILTER_KEYS: tuple[tuple[str, str], ...] = (
    ("Down", "Filter box: move into the results (the first row, or the selected one)"),
    ("Esc", "Filter box: clear it (all records again)"),
)
"""The filter box's own keys (:class:`FilterKeys`), listed by the shortcuts dialog."""

TABLE_KEYS: tuple[tuple[str, str], ...] = (
    ("Del", "Records table: delete the selected record (as Ctrl+Del)"),
    ("Enter or F2", "Records table: edit the selected record (to the form's first field)"),
)
"""The records table's own keys (``MainWindow._table_delete``), listed by the shortcuts
dialog."""

FIELD_KEYS: tuple[tuple[str, str], ...] = (
    ("Esc", "Form field: undo your typing in it (back to the record's value)"),
)
"""The form fields' own keys (``desktop.widgets.form``), listed by the shortcuts dialog."""


def version() -> str:
    """The installed Outpost version ("unknown" when not installed as a package)."""
    try:
        return metadata.version("outpost")
    except metadata.PackageNotFoundError:
        return "unknown"


def _name(a: QAction) -> str:
    text = a.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…. ")
    if text.startswith(("Undo", "Redo")):  # "Undo save Site 1": the command, not the key
        return text[:4]
    return text


def _with_ctrl(k: QKeySequence) -> bool:
    """Whether the key sequence's first key holds Ctrl (Cmd on macOS)."""
    return bool(k[0].keyboardModifiers() & Qt.KeyboardModifier.ControlModifier)


def shortcut_rows(actions: Iterable[QAction]) -> list[tuple[str, str]]:
    """(what, keys) for each action with a shortcut (each once, in the order given; the
    keys as this platform shows them: the main one, and alternatives with Ctrl (Redo:
    Ctrl+Y or Ctrl+Shift+Z), joined by " or "; session 14: a platform's legacy and
    dedicated-key bindings were listed too, "Ctrl+Z or Alt+Backspace or Undo"), then the
    conflicts view's, the records table's, the filter box's and the fields' own keys."""
    rows: list[tuple[str, str]] = []
    seen: set[int] = set()
    for a in actions:
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText)
                for i, k in enumerate(a.shortcuts())
                if not k.isEmpty() and (i == 0 or _with_ctrl(k))]
        if not keys or id(a) in seen or not a.text():
            continue
        seen.add(id(a))
        rows.append((_name(a), " or ".join(dict.fromkeys(keys))))
    rows.append(("Keep both (conflicts view)",
                 QKeySequence(BOTH_KEY).toString(QKeySequence.SequenceFormat.NativeText)))
    rows.extend((what, key) for key, what in (*TABLE_KEYS, *FILTER_KEYS, *FIELD_KEYS))
    return rows


class ShortcutsDialog(QDialog):
    """Help → Keyboard shortcuts: a table of every shortcut (:func:`shortcut_rows`)."""

    def __init__(self, rows: Sequence[tuple[str, str]], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts — Outpost")
        self.resize(520, 520)
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Action", "Keys"])
        for r, (what, keys) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(what))
            self.table.setItem(r, 1, QTableWidgetItem(keys))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.Stretch)
        self.table.resizeColumnToContents(1)
        note = QLabel("They work wherever the keyboard is in the window (the conflicts view "
                      "too, but Delete). In a form field, Undo first undoes your changes "
                      "of it (typing, a choice, a tick).")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table, 1)
        lay.addWidget(note)
        lay.addWidget(buttons)

    def rows(self) -> list[tuple[str, str]]:
        t = self.table
        return [(t.item(r, 0).text(), t.item(r, 1).text()) for r in range(t.rowCount())]


def about_text(data_dir: str, hub: str) -> str:
    """Help → About's text: version, data directory and hub (plain text)."""
    return (f"Outpost {version()}\n"
            "Offline-first record editor with sync.\n\n"
            f"Data directory: {data_dir or '(none: not a data directory)'}\n"
            f"Hub: {hub or '(none set: File → Connection settings)'}")


class FilterKeys(QObject):
    """The filter box's own keys: Down moves into the results (``into_results``), Esc
    clears the box (when it holds text; else the key goes on as before)."""

    def __init__(self, box: QLineEdit, into_results: Callable[[], bool]):
        super().__init__(box)
        self._box = box
        self._into = into_results
        box.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self._box and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            if mods == Qt.KeyboardModifier.NoModifier:
                if event.key() == Qt.Key.Key_Down:
                    return self._into()
                if event.key() == Qt.Key.Key_Escape and self._box.text():
                    self._box.clear()
                    return True
        return super().eventFilter(obj, event)
