"""A record's history: one row per event (revision, user, command, changed fields, and a
note: an edit of the user's that settled by itself, or their resolution of a conflict, as
``outpost history`` says it: :func:`core.satellite.conflicts.history_notes`)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from core.ledger.protocols import HistoryEntry
from core.revision import Rev
from core.satellite.api import Change, SatelliteAPI
from core.satellite.conflicts import history_notes
from desktop.format import short_rev

__all__ = ["ENTRY_ROLE", "HistoryModel"]

ENTRY_ROLE = int(Qt.ItemDataRole.UserRole) + 1
_Index = QModelIndex | QPersistentModelIndex
_HEADERS = ("Revision", "User", "Change", "Fields", "Note")
_CMD_TEXT = {"new": "created", "mod": "modified", "del": "deleted"}


class HistoryModel(QAbstractTableModel):
    """The confirmed events of one record, newest first."""

    def __init__(self, sat: SatelliteAPI, parent: Any = None):
        super().__init__(parent)
        self._sat = sat
        self._top = ""
        self._key = ""
        self._rows: list[HistoryEntry] = []
        self._notes: dict[Rev, str] = {}

    @property
    def record(self) -> tuple[str, str]:
        return self._top, self._key

    def set_record(self, top: str, key: str) -> None:
        """Show the history of ``top``/``key`` (empty strings: nothing)."""
        self.beginResetModel()
        self._top, self._key = top, key
        self._rows = list(reversed(sat_history(self._sat, top, key)))
        self._notes = history_notes(self._sat, top, key, self._rows) if self._rows else {}
        self.endResetModel()

    def entry(self, row: int) -> HistoryEntry:
        return self._rows[row]

    def note(self, row: int) -> str:
        """What the history says beside the change of ``row`` ("": nothing)."""
        return self._notes.get(self._rows[row].rev, "")

    def on_change(self, ch: Change) -> None:
        if self._top and (ch.reset or self._key in ch.records.get(self._top, ())):
            self.set_record(self._top, self._key)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(_HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal
                and 0 <= section < len(_HEADERS)):
            return _HEADERS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._rows)):
            return None
        e = self._rows[index.row()]
        if role == ENTRY_ROLE:
            return e
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            col = index.column()
            if col == 0:
                return short_rev(e.rev)
            if col == 1:
                return e.usr or "—"
            if col == 2:
                return _CMD_TEXT.get(str(e.cmd), str(e.cmd))
            if col == 3:
                return ", ".join(e.fields)
            if col == 4:
                return self._notes.get(e.rev, "")
        return None


def sat_history(sat: SatelliteAPI, top: str, key: str) -> list[HistoryEntry]:
    if not top or not key:
        return []
    return sat.history(top, key)
