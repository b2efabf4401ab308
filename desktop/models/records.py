"""The records of one topic as a lazily fetched, sortable, filterable table model.

The model keeps only the ordered list of visible keys; rows are fetched in pages
(``canFetchMore``/``fetchMore``) and each record is read from the satellite when first shown,
so opening a topic of 100,000 records reads one page, not the topic. Satellite change notices
become ``beginInsertRows`` / ``beginRemoveRows`` / ``dataChanged``, or a ``modelReset`` when
many records changed at once (a catch-up).
"""

from __future__ import annotations

import bisect
import contextlib
import threading
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QFont

from core.satellite.api import Change, RecordView, SatelliteAPI
from core.schema import Field, Model
from desktop.format import display_value

__all__ = ["PENDING_ROLE", "RECORD_ROLE", "RecordTableModel"]

RECORD_ROLE = int(Qt.ItemDataRole.UserRole) + 1
"""Role returning the row's :class:`RecordView`."""
PENDING_ROLE = int(Qt.ItemDataRole.UserRole) + 2
"""Role returning ``"pending"``, ``"conflict"`` or ``""``."""

PAGE = 200
RESET_OVER = 500  # more changed keys than this in one notice: reload instead of row updates
RELOAD_DELAY_MS = 400  # big notices (a catch-up in batches) coalesce into one reload

_PENDING_BG = QColor("#fff4cc")
_CONFLICT_BG = QColor("#ffd9d6")
_Index = QModelIndex | QPersistentModelIndex


class RecordTableModel(QAbstractTableModel):
    """Table of one topic's records as the user sees them (replica + pending).

    Args:
        sat: the satellite.
        top: the topic shown.
    """

    _keys_read = Signal(object)  # (generation, replica rev, keys or the error): from a thread

    def __init__(self, sat: SatelliteAPI, top: str, parent: Any = None):
        super().__init__(parent)
        self._sat = sat
        self._top = top
        self._model: Model = sat.project.model(top)
        self._fields: tuple[Field, ...] = self._model.fields
        self._keys: list[str] = []
        self._loaded = 0
        self._cache: dict[str, RecordView] = {}
        self._ref_cache: dict[tuple[str, str], str] = {}
        self._filter = ""
        self._sort_col = -1  # -1: by key
        self._sort_desc = False
        self._reload_timer = QTimer(self)
        self._reload_timer.setSingleShot(True)
        self._reload_timer.setInterval(RELOAD_DELAY_MS)
        self._reload_timer.timeout.connect(self._reload_when_idle)
        self._read_gen = 0      # the generation of the last key read started off the UI thread
        self._reading = False   # such a read is in flight
        self._keys_read.connect(self._on_keys_read, Qt.ConnectionType.QueuedConnection)
        self._reload()

    # -- public helpers ------------------------------------------------------------------------

    @property
    def topic(self) -> str:
        return self._top

    @property
    def model_def(self) -> Model:
        return self._model

    @property
    def complete(self) -> bool:
        """Whether :meth:`total` is the topic's count: no filter, no reload pending."""
        return not self._filter and not self.reloading

    @property
    def reloading(self) -> bool:
        """A reload is scheduled or its keys are being read off the UI thread."""
        return self._reload_timer.isActive() or self._reading

    def total(self) -> int:
        """How many records match (fetched or not)."""
        return len(self._keys)

    def key_at(self, row: int) -> str:
        return self._keys[row]

    def row_of(self, key: str) -> int:
        """The row of ``key`` (fetching pages up to it), or -1 when it is not shown."""
        try:
            row = self._keys.index(key)
        except ValueError:
            return -1
        while row >= self._loaded and self.canFetchMore(QModelIndex()):
            self.fetchMore(QModelIndex())
        return row

    def view(self, row: int) -> RecordView | None:
        key = self._keys[row]
        rv = self._cache.get(key)
        if rv is None:
            rv = self._sat.record(self._top, key)
            if rv is None:
                return None
            self._cache[key] = rv
        return rv

    def set_filter(self, text: str) -> None:
        """Show only records with a field containing ``text`` (case-insensitive)."""
        text = text.strip().lower()
        if text == self._filter:
            return
        self._filter = text
        self.beginResetModel()
        self._reload()
        self.endResetModel()

    # -- Qt model interface --------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._loaded

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._fields)

    def canFetchMore(self, parent: _Index) -> bool:
        return not parent.isValid() and self._loaded < len(self._keys)

    def fetchMore(self, parent: _Index) -> None:
        if parent.isValid():
            return
        n = min(PAGE, len(self._keys) - self._loaded)
        if n <= 0:
            return
        self.beginInsertRows(QModelIndex(), self._loaded, self._loaded + n - 1)
        self._loaded += n
        self.endInsertRows()

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self._fields):
            f = self._fields[section]
            if role == Qt.ItemDataRole.DisplayRole:
                return f.title
            if role == Qt.ItemDataRole.ToolTipRole:
                return f"{f.name} ({f.type}{', required' if f.required else ''})"
        if (orientation == Qt.Orientation.Vertical and role == Qt.ItemDataRole.DisplayRole
                and 0 <= section < self._loaded):
            return str(section + 1)
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < self._loaded):
            return None
        rv = self.view(index.row())
        if rv is None:
            return None
        col = index.column()
        if role == RECORD_ROLE:
            return rv
        if role == PENDING_ROLE:
            return "conflict" if rv.is_conflict else "pending" if rv.is_pending else ""
        if role == Qt.ItemDataRole.DisplayRole:
            f = self._fields[col]
            value = (rv.fields or {}).get(f.name)
            if f.type == "ref" and value is not None:
                return self._ref_label(f.ref, str(value))
            return display_value(f, value)
        if role == Qt.ItemDataRole.BackgroundRole:
            if rv.is_conflict:
                return QBrush(_CONFLICT_BG)
            if rv.is_pending:
                return QBrush(_PENDING_BG)
            return None
        if role == Qt.ItemDataRole.FontRole and rv.is_pending:
            font = QFont()
            font.setItalic(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            if rv.is_conflict:
                return "Conflict: the hub rejected a change of this record; open Conflicts"
            if rv.is_pending:
                return "Pending: changed here, not yet accepted by the hub"
            return f"{self._top} {rv.key}"
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            from desktop.icons import icon

            if rv.is_conflict:
                return icon("conflict")
            if rv.is_pending:
                return icon("pending")
            return None
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        self._sort_col = column if 0 <= column < len(self._fields) else -1
        self._sort_desc = order == Qt.SortOrder.DescendingOrder
        old = self.persistentIndexList()
        old_keys = [(self._keys[i.row()], i.column()) for i in old]
        self._keys = self._ordered(self._keys)
        pos = {k: r for r, k in enumerate(self._keys)}
        new = [self.index(pos[k], c) if pos[k] < self._loaded else QModelIndex()
               for k, c in old_keys]
        self.changePersistentIndexList(old, new)
        self.layoutChanged.emit()

    # -- reacting to the satellite -------------------------------------------------------------

    def on_change(self, ch: Change) -> None:
        """Apply a satellite change notice to the rows."""
        if ch.reset:
            self.reload()
            return
        keys = ch.records.get(self._top)
        ref_tops = {f.ref for f in self._fields if f.type == "ref"}
        if any(t in ch.records for t in ref_tops):
            self._ref_cache.clear()
            if self._loaded:
                self.dataChanged.emit(self.index(0, 0),
                                      self.index(self._loaded - 1, len(self._fields) - 1))
        if not keys:
            return
        if len(keys) > RESET_OVER or self._reload_timer.isActive():
            self._reload_timer.start()  # coalesce a burst of big notices into one reload
            return
        for key in sorted(keys):
            self._apply_key(key)

    def _reload_when_idle(self) -> None:
        # during a catch-up, every batch would cost a read of the whole topic on the UI
        # thread: wait until the satellite says the catch-up is over
        if self._sat.status().syncing:
            self._reload_timer.start()
            return
        if self._filter or self._sort_col >= 0:
            self.reload()  # needs every record: read here, as sorting and filtering do
            return
        self._read_keys_off_thread()

    def _read_keys_off_thread(self) -> None:
        """Reload in key order with the replica's keys read on a worker thread: after a
        1,000,000-event catch-up that read held the UI thread for 1.2 s. The rows stay as they
        are until the keys arrive (:meth:`_on_keys_read`)."""
        self._read_gen += 1
        self._reading = True
        gen, rev, top, sat, done = (self._read_gen, self._sat.status().rev, self._top,
                                    self._sat, self._keys_read)

        def work() -> None:
            keys: list[str] | Exception
            try:
                keys = sat.confirmed_keys(top)
            except Exception as exc:  # handed to the UI thread, which reloads there
                keys = exc
            with contextlib.suppress(RuntimeError):  # the model was deleted (window closed)
                done.emit((gen, rev, keys))

        threading.Thread(target=work, name="outpost-keys", daemon=True).start()

    def _on_keys_read(self, msg: tuple[int, int, list[str] | Exception]) -> None:
        gen, rev, keys = msg
        if gen != self._read_gen or not self._reading:
            return  # superseded by a later read or a reload
        self._reading = False
        if self._reload_timer.isActive():
            return  # more hub data came meanwhile: that reload reads again
        if isinstance(keys, Exception) or self._filter or self._sort_col >= 0:
            self.reload()  # on this thread: its error (if any) surfaces as before
            return
        if self._sat.status().rev != rev:
            self._read_keys_off_thread()  # hub data was stored during the read: read again
            return
        self.beginResetModel()
        self._cache.clear()
        self._ref_cache.clear()
        self._keys = self._ordered(self._sat.keys(self._top, confirmed=keys))
        self._loaded = min(PAGE, len(self._keys))
        self.endResetModel()

    def reload(self) -> None:
        """Re-read the keys from the satellite (a reset of the whole model)."""
        self._reload_timer.stop()
        self._reading = False  # a read in flight is superseded
        self.beginResetModel()
        self._reload()
        self.endResetModel()

    def _reload(self) -> None:
        self._cache.clear()
        self._ref_cache.clear()
        if self._filter:
            recs = [r for r in self._sat.records(self._top) if self._matches(r)]
            self._cache.update({r.key: r for r in recs})
            keys = [r.key for r in recs]
        elif self._sort_col < 0:
            # in key order only the keys are needed (an index-only read): rows are read when
            # first shown. Reading every record here cost ~20 s on the UI thread after a
            # 1,000,000-event catch-up (a million RecordViews, and full garbage collections
            # over them), and 1.2 s at first paint on 100,000 records.
            keys = self._sat.keys(self._top)
        else:
            recs = self._sat.records(self._top)  # sorting by a field needs every record
            self._cache.update({r.key: r for r in recs})
            keys = [r.key for r in recs]
        self._keys = self._ordered(keys)
        self._loaded = min(PAGE, len(self._keys))

    def _ordered(self, keys: list[str]) -> list[str]:
        if self._sort_col < 0:
            return sorted(keys, reverse=self._sort_desc)
        f = self._fields[self._sort_col]
        if len(self._cache) < len(keys):
            self._cache.update({r.key: r for r in self._sat.records(self._top)})

        def sort_key(k: str) -> tuple[int, Any, str]:
            rv = self._cache.get(k)
            v = (rv.fields or {}).get(f.name) if rv else None
            if v is None:
                return (1, "", k)  # empty values last
            if isinstance(v, bool | int | float):
                return (0, float(v), k)
            return (0, str(v).lower(), k)

        try:
            return sorted(keys, key=sort_key, reverse=self._sort_desc)
        except TypeError:  # mixed value types: fall back to text
            return sorted(keys, key=lambda k: str(sort_key(k)), reverse=self._sort_desc)

    def _matches(self, rv: RecordView) -> bool:
        if not self._filter:
            return True
        if self._filter in rv.key.lower():
            return True
        for f in self._fields:
            v = (rv.fields or {}).get(f.name)
            if v is not None and self._filter in display_value(f, v).lower():
                return True
        return False

    def _apply_key(self, key: str) -> None:
        rv = self._sat.record(self._top, key)
        visible = rv is not None and rv.fields is not None and self._matches(rv)
        try:
            row = self._keys.index(key)
        except ValueError:
            row = -1
        if row >= 0:
            if visible:
                assert rv is not None
                self._cache[key] = rv
                if row < self._loaded:
                    self.dataChanged.emit(self.index(row, 0),
                                          self.index(row, len(self._fields) - 1))
                return
            self._cache.pop(key, None)
            if row < self._loaded:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._keys[row]
                self._loaded -= 1
                self.endRemoveRows()
            else:
                del self._keys[row]
            return
        if not visible:
            return
        assert rv is not None
        self._cache[key] = rv
        if self._sort_col < 0 and not self._sort_desc:
            pos = bisect.bisect_left(self._keys, key)
        else:
            pos = len(self._keys)
        if pos <= self._loaded:
            self.beginInsertRows(QModelIndex(), pos, pos)
            self._keys.insert(pos, key)
            self._loaded += 1
            self.endInsertRows()
        else:
            self._keys.insert(pos, key)

    def _ref_label(self, top: str, key: str) -> str:
        label = self._ref_cache.get((top, key))
        if label is None:
            label = ref_label(self._sat, top, key)
            self._ref_cache[(top, key)] = label
        return label


def ref_label(sat: SatelliteAPI, top: str, key: str) -> str:
    """The display text of a referenced record: its display field, or its key when missing."""
    if not sat.project.has(top):
        return key
    m = sat.project.model(top)
    rv = sat.record(top, key)
    if rv is None or rv.fields is None:
        return f"{key} (missing)"
    v = rv.fields.get(m.display)
    return str(v) if v not in (None, "") else key
