"""The sidebar: one row per topic (model) with its label and record count."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, QTimer

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
        self._counts: dict[str, int | None] = dict.fromkeys(self._topics)  # None: not counted
        self._stale: set[str] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(400)
        self._timer.timeout.connect(self._recount)
        self.reloading: Callable[[str], bool] = lambda top: False
        """Whether a records table showing ``top`` is reloading (its count then comes
        through :meth:`counted`): set by the window."""

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
            n = self._counts.get(top)
            return f"{m.title}  ({'…' if n is None else f'{n:,}'})"
        if role == Qt.ItemDataRole.ToolTipRole:
            n = self._counts.get(top)
            return f"topic {top}: {'?' if n is None else f'{n:,}'} records"
        if role == TOPIC_ROLE:
            return top
        if role == Qt.ItemDataRole.DecorationRole:
            from desktop.icons import icon

            return icon("topic")
        return None

    def count_of(self, top: str) -> int | None:
        """The topic's count as shown (None: not counted yet)."""
        return self._counts.get(top)

    def set_count(self, top: str, n: int) -> None:
        """Set a topic's count (known elsewhere, e.g. from its record table)."""
        if top in self._counts and self._counts[top] != n:
            self._counts[top] = n
            i = self.index(self._topics.index(top), 0)
            self.dataChanged.emit(i, i)

    def counted(self, top: str, n: int) -> None:
        """A fresh count from a full read made elsewhere (the records table's reload): no
        recount of ``top`` is needed for the changes seen so far."""
        self._stale.discard(top)
        if not self._stale:
            self._timer.stop()  # nothing left to recount
        self.set_count(top, n)

    def count_all(self) -> None:
        """Count the topics not counted yet (the window calls it after the first paint)."""
        for t in self._topics:
            if self._counts[t] is None:
                self.set_count(t, self._sat.count(t))

    def on_change(self, ch: Change, known: Mapping[str, int] | None = None) -> None:
        """Refresh the counts of the topics a change touched.

        ``known``: counts already known after the change (a records table that follows the
        topic row by row): taken as they are, without a read of the topic's keys (a second
        or more on a topic of a million records).
        """
        known = known or {}
        for t, n in known.items():
            self.counted(t, n)
        tops = [t for t in self._topics if t not in known and (ch.reset or t in ch.records)]
        big = ch.reset or sum(len(ch.records.get(t, ())) for t in tops) > 500
        if big or self._timer.isActive():  # a catch-up: count once it is over
            self._stale.update(tops)
            self._timer.start()
            return
        for t in tops:
            self.set_count(t, self._sat.count(t))

    def _recount(self) -> None:
        if self._sat.status().syncing:
            self._timer.start()
            return
        stale, self._stale = self._stale, set()
        for t in self._topics:
            if t in stale:
                if self.reloading(t):  # its table reads the keys anyway: wait for its count
                    self._stale.add(t)
                    self._timer.start()
                    continue
                self.set_count(t, self._sat.count(t))
