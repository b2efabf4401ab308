"""The sidebar: one row per topic (model) with its label and record count."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from core.satellite.api import Change, SatelliteAPI

__all__ = ["TOPIC_ROLE", "TopicListModel"]

TOPIC_ROLE = int(Qt.ItemDataRole.UserRole) + 1
_Index = QModelIndex | QPersistentModelIndex


class TopicListModel(QAbstractListModel):
    """Topics of the satellite's project, each with ``label (count)``."""

    def __init__(self, sat: SatelliteAPI, parent: Any = None):
        super().__init__(parent)
        self._sat = sat
        self._topics = list(sat.project.topics)
        self._counts = {t: sat.count(t) for t in self._topics}

    def topic_at(self, row: int) -> str:
        return self._topics[row]

    def row_of(self, top: str) -> int:
        return self._topics.index(top) if top in self._topics else -1

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._topics)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._topics)):
            return None
        top = self._topics[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            m = self._sat.project.model(top)
            return f"{m.title}  ({self._counts.get(top, 0):,})"
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"topic {top}: {self._counts.get(top, 0):,} records"
        if role == TOPIC_ROLE:
            return top
        if role == Qt.ItemDataRole.DecorationRole:
            from desktop.icons import icon

            return icon("topic")
        return None

    def on_change(self, ch: Change) -> None:
        """Refresh the counts of the topics a change touched."""
        tops = self._topics if ch.reset else [t for t in self._topics if t in ch.records]
        for t in tops:
            n = self._sat.count(t)
            if n != self._counts.get(t):
                self._counts[t] = n
                i = self.index(self._topics.index(t), 0)
                self.dataChanged.emit(i, i)
