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
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QFont, QGuiApplication

from core.satellite import order
from core.satellite.api import Change, RecordView, SatelliteAPI
from core.schema import Field, Model
from desktop.format import display_value
from desktop.look import row_colors

__all__ = ["PENDING_ROLE", "RECORD_ROLE", "RecordTableModel"]

RECORD_ROLE = int(Qt.ItemDataRole.UserRole) + 1
"""Role returning the row's :class:`RecordView`."""
PENDING_ROLE = int(Qt.ItemDataRole.UserRole) + 2
"""Role returning ``"pending"``, ``"conflict"`` or ``""``."""

PAGE = 200
RESET_OVER = 500  # more changed keys than this in one notice: reload instead of row updates
SCAN_OVER = 20_000_000
"""Sorted by a field, finding a changed record's row scans the rows (about 13 ns a row): a
notice whose keys times the rows exceed this (about 0.25 s on the UI thread) reloads instead,
off the UI thread on a big topic. In key order rows are found by binary search."""
RELOAD_DELAY_MS = 400  # big notices (a catch-up in batches) coalesce into one reload

_Index = QModelIndex | QPersistentModelIndex


_brushes: dict[tuple[int, str], tuple[QBrush, QBrush]] = {}


def _row_brushes(kind: str) -> tuple[QBrush, QBrush]:
    """(background, text) brushes of a ``kind`` row under the application's palette as it
    is now (a theme change shows at the next paint)."""
    pal = QGuiApplication.palette()
    k = (pal.cacheKey(), kind)
    got = _brushes.get(k)
    if got is None:
        if len(_brushes) > 16:
            _brushes.clear()
        bg, fg = row_colors(kind, pal)
        got = _brushes[k] = (QBrush(bg), QBrush(fg))
    return got


class RecordTableModel(QAbstractTableModel):
    """Table of one topic's records as the user sees them (replica + pending).

    Args:
        sat: the satellite.
        top: the topic shown.
        size: how many records it has, when known (else counted here): a bigger topic than
            :data:`SYNC_UNDER` is read off the UI thread (:attr:`busy` meanwhile).
    """

    _read_done = Signal(object)  # (generation, query, snapshot, result): a thread
    busy_changed = Signal(bool)
    """A read off the UI thread started (True) or its rows are shown (False)."""
    sort_applied = Signal(int, object)
    """The order the rows now show: column (-1: key order) and :class:`Qt.SortOrder`."""

    def __init__(self, sat: SatelliteAPI, top: str, parent: Any = None, *,
                 size: int | None = None):
        super().__init__(parent)
        self._sat = sat
        self._top = top
        self._model: Model = sat.project.model(top)
        self._fields: tuple[Field, ...] = self._model.fields
        # an int-keyed topic shows its key in a first column (the number a user reads out,
        # types in a command, is told by Keep both), and orders its rows by that number
        self._kcol = 1 if self._model.key == "int" else 0
        self._ksort = order.key_sort(self._model.key == "int")
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
        self._read_gen = 0      # the generation of the last read started
        self._reading = False   # a read off the UI thread is in flight
        self._during: set[str] = set()  # keys of this topic changed while it is in flight
        self._read_done.connect(self._on_read, Qt.ConnectionType.QueuedConnection)
        # the topic's size as last seen (``size``: known already, e.g. the sidebar's count; a
        # count(*) of a million records is 20-50 ms): its rows are read here or off the thread
        self._size = sat.count(top) if size is None else size
        self._start()

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

    @property
    def filter_text(self) -> str:
        return self._filter

    @property
    def busy(self) -> bool:
        """The rows are being read off the UI thread (opening, sorting, filtering, reloading
        a big topic): the rows shown are the previous ones until then."""
        return self._reading

    @property
    def sort_order(self) -> tuple[int, Qt.SortOrder]:
        """The order asked for last (the column; key order: the Key column, -1 when there
        is none): what the rows show once :attr:`busy` is over."""
        return self._view_col(self._sort_col), (Qt.SortOrder.DescendingOrder if self._sort_desc
                                                else Qt.SortOrder.AscendingOrder)

    @property
    def key_column(self) -> int:
        """The column showing the record's key (int-keyed topics), or -1."""
        return 0 if self._kcol else -1

    def _view_col(self, col: int) -> int:
        """The view's column of a sort column (-1: key order)."""
        return col + self._kcol if col >= 0 else self._kcol - 1

    def total(self) -> int:
        """How many records match (fetched or not)."""
        return len(self._keys)

    def key_at(self, row: int) -> str:
        return self._keys[row]

    def row_of(self, key: str) -> int:
        """The row of ``key`` (fetching pages up to it), or -1 when it is not shown."""
        row = self._find(key)
        if row < 0:
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
        self._start()

    # -- Qt model interface --------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._loaded

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._fields) + self._kcol

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
        if orientation == Qt.Orientation.Horizontal and section == 0 and self._kcol:
            if role == Qt.ItemDataRole.DisplayRole:
                return "Key"
            if role == Qt.ItemDataRole.ToolTipRole:
                return f"the record's key (int): `outpost show {self._top} KEY`"
            return None
        field = section - self._kcol
        if orientation == Qt.Orientation.Horizontal and 0 <= field < len(self._fields):
            f = self._fields[field]
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
            if col < self._kcol:
                return rv.key
            f = self._fields[col - self._kcol]
            value = (rv.fields or {}).get(f.name)
            if f.type == "ref" and value is not None:
                return self._ref_label(f.ref, str(value))
            return display_value(f, value)
        if role in (Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ForegroundRole):
            # from the palette, and the text colour with the background (review a11y 16:
            # fixed light backgrounds under a dark theme's light text read 1.05:1)
            if not (rv.is_conflict or rv.is_pending):
                return None
            bg, fg = _row_brushes("conflict" if rv.is_conflict else "pending")
            return bg if role == Qt.ItemDataRole.BackgroundRole else fg
        if role in (Qt.ItemDataRole.AccessibleTextRole,
                    Qt.ItemDataRole.AccessibleDescriptionRole):
            # a screen reader hears the state a colour and an icon show (review a11y 16: a
            # conflict row read like a synced one)
            if not (rv.is_conflict or rv.is_pending):
                return None
            if role == Qt.ItemDataRole.AccessibleDescriptionRole:
                return self.data(index, Qt.ItemDataRole.ToolTipRole)
            shown = self.data(index, Qt.ItemDataRole.DisplayRole)
            state = "in conflict" if rv.is_conflict else "pending"
            return f"{'' if shown is None else shown}, {state}" if col == 0 else shown
        if role == Qt.ItemDataRole.FontRole and rv.is_pending:
            font = QFont()
            font.setItalic(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            if rv.is_conflict:
                return "Conflict: the hub rejected a change of this record; open Conflicts"
            if rv.applying:
                return ("Pending: an unsynced edit of it is being applied (the values shown "
                        "are without it until it is)")
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
        """Order the rows by a field (``column``; -1: by key); the rows are read off the UI
        thread on a big topic (:attr:`busy`), :attr:`sort_applied` tells when they show."""
        column -= self._kcol  # the Key column: key order
        col = column if 0 <= column < len(self._fields) else -1
        desc = order == Qt.SortOrder.DescendingOrder
        if (col, desc) == (self._sort_col, self._sort_desc):
            return  # e.g. the view setting its indicator to what is shown
        self._sort_col, self._sort_desc = col, desc
        self._start()

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
                                      self.index(self._loaded - 1, self.columnCount() - 1))
        if not keys:
            return
        if self._reading and len(keys) <= RESET_OVER:
            # the read in flight may have seen these records before or after the change:
            # they are applied again to what it shows (a big notice: the timer reloads)
            self._during.update(keys)
        scans = 0 if self._sort_col < 0 and not self._sort_desc else len(keys) * len(self._keys)
        if len(keys) > RESET_OVER or scans > SCAN_OVER or self._reload_timer.isActive():
            self._reload_timer.start()  # coalesce a burst of big notices into one reload
            return
        for key in sorted(keys):
            self._apply_key(key)

    def _reload_when_idle(self) -> None:
        # during a catch-up, every batch would cost a read of the whole topic: wait until the
        # satellite says the catch-up is over
        if self._sat.status().syncing:
            self._reload_timer.start()
            return
        self._start(threaded=True)  # the topic may have grown by a million records

    def reload(self) -> None:
        """Read the rows again (a reset of the whole model; off the UI thread on a big
        topic)."""
        self._start()

    # -- reading the rows ----------------------------------------------------------------------
    #
    # A read (opening the topic, a sort, a filter, a reload) of a topic over SYNC_UNDER
    # records runs on a worker thread: the replica's rows, without the records pending edits
    # change (``overlaid``, taken when the read starts), then those records placed in as
    # they are then (session 15: on the worker too, not the UI thread); on the UI thread,
    # the records a pending edit changed during the read are placed in as live changes.
    # A read superseded by a later one is dropped (generation). What changed in the topic
    # while it ran is applied to what it shows, key by key, as a live change is; a change too
    # big for that (a catch-up batch) has started the reload timer, which reads again once
    # the catch-up is over: the rows read are shown meanwhile. (Reading again whenever hub
    # data was stored never finished while a catch-up or a busy hub stored data more often
    # than a read of a big topic takes.) Smaller topics are read at once on the UI thread,
    # the same way (no "loading" flash).

    def _start(self, threaded: bool = False) -> None:
        self._reload_timer.stop()
        self._read_gen += 1
        gen = self._read_gen
        q = _Query(self._filter, self._sort_col, self._sort_desc)
        if not threaded and self._size <= SYNC_UNDER:
            was = self._reading
            self._reading = False
            keys, vals = _read_rows(self._sat, self._top, self._fields, q, frozenset(), None)
            self._show(q, frozenset(), keys, vals)
            if was:
                self.busy_changed.emit(False)
            return
        snap = self._sat.overlaid(self._top)
        top, sat, fields, done = self._top, self._sat, self._fields, self._read_done
        self._during = set()
        if not self._reading:
            self._reading = True
            self.busy_changed.emit(True)

        def stale() -> bool:
            return gen != self._read_gen

        ksort = self._ksort

        def work() -> None:
            res: (tuple[list[str], list[Any] | None, dict[str, RecordView]] | BaseException
                  | None)
            try:
                keys, vals = _read_rows(sat, top, fields, q, snap, stale)
                # the records of the pending edits read and placed here too, not on the UI
                # thread (session 15: 50,000 of an import, about 0.8 s of CPU there)
                res = _merged(sat, top, fields, q, snap, keys, vals, ksort)
            except _Superseded:
                return
            except Exception as exc:  # handed to the UI thread, which reads there
                res = exc
            with contextlib.suppress(RuntimeError):  # the model was deleted (window closed)
                done.emit((gen, q, snap, res))

        threading.Thread(target=work, name="outpost-rows", daemon=True).start()

    def _on_read(self, msg: tuple[int, _Query, frozenset[str],
                                  tuple[list[str], list[Any] | None, dict[str, RecordView]]
                                  | Exception]) -> None:
        gen, q, snap, res = msg
        if gen != self._read_gen or not self._reading:
            return  # superseded by a later read
        if isinstance(res, Exception):  # read here: its error surfaces as a read's would
            self._reading = False
            self.busy_changed.emit(False)
            keys, vals = _read_rows(self._sat, self._top, self._fields, q, frozenset(), None)
            self._show(q, frozenset(), keys, vals)
            return
        self._reading = False
        keys, vals, views = res
        # records a pending edit changed since the read started: they are in ``keys`` as the
        # replica has them; taken out and placed here (few: the user's edits meanwhile)
        extra = self._sat.overlaid(self._top) - snap
        if extra:
            vals = _without_vals(keys, vals, extra)
            keys = _without(keys, extra)
            if not self._reload_timer.isActive():  # else the reload reads them (an import's)
                keys, vals, more = _merged(self._sat, self._top, self._fields, q, extra, keys,
                                           vals, self._ksort)
                views.update(more)
        self._show(q, snap, keys, None, views)
        during, self._during = self._during, set()
        if not self._reload_timer.isActive():  # else it reads everything again anyway
            for key in sorted(during):
                self._apply_key(key)
        self.busy_changed.emit(False)

    def _show(self, q: _Query, snap: frozenset[str], keys: list[str],
              vals: list[Any] | None, views: dict[str, RecordView] | None = None) -> None:
        """Show the rows read for ``q`` (without the records of ``snap``) with the pending
        edits of now placed in; ``views``: placed already (off the UI thread: ``keys`` is
        the whole list), those records' views."""
        self._cache.clear()
        self._ref_cache.clear()
        if views is None:
            cur = self._sat.overlaid(self._top)
            extra = cur - snap  # edited during the read: in ``keys`` as the replica has them
            if extra:
                vals = _without_vals(keys, vals, extra)
                keys = _without(keys, extra)
            keys, _, views = _merged(self._sat, self._top, self._fields, q, cur | snap, keys,
                                     vals, self._ksort)
        self._cache.update(views)
        if not q.filter:
            self._size = len(keys)
        old = self._keys
        if len(keys) == len(old) and self.persistentIndexList():
            self._relayout(keys)  # e.g. a sort: the selected row follows its record
        else:
            self.beginResetModel()
            self._keys = keys
            self._loaded = min(PAGE, len(keys))
            self.endResetModel()
        _drop_later(old, vals)
        self.sort_applied.emit(self._view_col(q.col), Qt.SortOrder.DescendingOrder if q.desc
                               else Qt.SortOrder.AscendingOrder)

    def _relayout(self, keys: list[str]) -> None:
        """Show ``keys`` (as many as the rows shown) in a new order, moving the persistent
        indexes (the selection, the current row) with their records."""
        self.layoutAboutToBeChanged.emit()
        pers = self.persistentIndexList()
        rows: dict[str, int] = {}
        new = []
        for i in pers:
            k = self._keys[i.row()]
            if k not in rows:
                try:
                    rows[k] = keys.index(k)
                except ValueError:
                    rows[k] = -1
            r = rows[k]
            new.append(self.index(r, i.column()) if 0 <= r < self._loaded else QModelIndex())
        self._keys = keys
        self.changePersistentIndexList(pers, new)
        self.layoutChanged.emit()

    def _matches(self, rv: RecordView) -> bool:
        return _matches(self._fields, self._filter, rv)

    def _live_position(self, key: str, rv: RecordView) -> int:
        """Where a record new to the rows goes in the order shown (rows read as needed)."""
        f = self._fields[self._sort_col] if self._sort_col >= 0 else None

        def at(i: int) -> tuple[int, int, Any, str]:
            other = self.view(i)
            return (_okey(f, other, self._keys[i], self._ksort) if other is not None
                    else (1, 0, 0, ""))

        return _position(len(self._keys), _okey(f, rv, key, self._ksort), self._sort_desc, at)

    def _find(self, key: str) -> int:
        """The index of ``key`` in the rows, or -1: a binary search in key order (the
        default), else a scan (about 13 ms at 1,000,000 rows; see :meth:`on_change`)."""
        if self._sort_col < 0 and not self._sort_desc:
            i = bisect.bisect_left(self._keys, self._ksort(key), key=self._ksort)
            return i if i < len(self._keys) and self._keys[i] == key else -1
        try:
            return self._keys.index(key)
        except ValueError:
            return -1

    def _apply_key(self, key: str) -> None:
        rv = self._sat.record(self._top, key)
        visible = rv is not None and rv.fields is not None and self._matches(rv)
        row = self._find(key)
        if row >= 0:
            if visible:
                assert rv is not None
                self._cache[key] = rv
                if row < self._loaded:
                    self.dataChanged.emit(self.index(row, 0),
                                          self.index(row, self.columnCount() - 1))
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
            pos = bisect.bisect_left(self._keys, self._ksort(key), key=self._ksort)
        else:
            pos = self._live_position(key, rv)
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


SYNC_UNDER = 5_000
"""Topics with at most this many records are read on the UI thread (a few ms): no "loading"
state; bigger ones off it (reading a million keys took about 1 s)."""


def _drop_later(*lists: list[Any] | None) -> None:
    """Free big lists on a worker thread, a slice at a time: freeing a million keys or values
    at once held the GIL (and so the UI thread) for 30-60 ms."""
    big = [x for x in lists if x is not None and len(x) > 20_000]
    if not big:
        return

    def free() -> None:
        for x in big:
            while x:
                del x[-10_000:]

    threading.Thread(target=free, name="outpost-free", daemon=True).start()


class _Superseded(Exception):
    """A read off the UI thread stopped: a later one replaced it."""


@dataclass(frozen=True, slots=True)
class _Query:
    filter: str
    col: int      # -1: key order
    desc: bool


def _matches(fields: tuple[Field, ...], text: str, rv: RecordView) -> bool:
    """Whether a record's key or a field's cell text contains ``text`` (lower case)."""
    if not text:
        return True
    if text in rv.key.lower():
        return True
    for f in fields:
        v = (rv.fields or {}).get(f.name)
        if v is not None and text in display_value(f, v).lower():
            return True
    return False


_FLOAT_CHARS = frozenset("0123456789.-+einfa")  # every character repr(x) can show
_LOWER_TO_ASCII = {"\u0130": "i", "\u212a": "k"}
"""The only characters outside ASCII whose ``str.lower()`` holds an ASCII letter (İ -> i̇, the
Kelvin sign -> k; tests/desktop/test_filter_prefilter.py checks the list against Python's
Unicode tables). Every other one lower-cases to characters outside ASCII, so an ASCII
filter text found in a lower-cased cell is found by SQLite's ``LIKE`` (which folds ASCII
only) in the stored text — or the cell holds one of these."""
_CASED_LAST = 0x1E921  # the last character whose lower case differs (Adlam): tested
_TEXT_TYPES = ("str", "text", "enum", "date")  # the cell shows stored text
_NOT_UTC_SECONDS = "length({c}) <> 20 OR substr({c}, 11, 1) <> 'T' OR substr({c}, 20) <> 'Z'"
"""A ``datetime`` not stored as ``YYYY-MM-DDTHH:MM:SSZ`` (with milliseconds, an offset, a
lower-case ``t``): its cell's text (:func:`desktop.format.display_datetime`) is not the stored
text with ``T`` -> space and ``Z`` -> `` UTC``, so such rows are read and matched in Python.
(A value of that shape that is not a valid time shows as stored.)"""
_DT_CHARS = frozenset("0123456789-:. utc")
"""Every character the cell of a valid datetime shows (lower case)."""
_DT_SHOWN = frozenset(" utcz")
"""A filter text without these characters is found in the cell of a valid datetime of 20
characters (whole seconds, in UTC: ``T``, ``t`` or a space between date and time, ``Z`` or
``z``) exactly when it is found in its stored text: it lies within the date or the time."""
_JSON_ESCAPED = frozenset('"\\' + "".join(map(chr, range(32))))  # written escaped in JSON
_MORE = frozenset(" \u2026")  # a text cell of several lines shows its first + " …"
_MAX_CONDS = 300  # SQLite's expression depth is 1,000: wider models read every row
_MAX_LIKE = 10_000  # SQLite refuses LIKE and GLOB patterns over 50,000 bytes


@functools.cache
def _cases() -> tuple[dict[str, str], frozenset[str]]:
    """Every character by the lower case it has: ``c`` -> the characters ``x`` with
    ``c == x.lower()[0]`` (``c`` itself included; in a word, Σ can also lower-case to ς), and
    the characters that only come second in a lower case of several (İ -> i + U+0307).
    About 20 ms, once."""
    found: dict[str, set[str]] = {}
    later: set[str] = set()
    for x in map(chr, range(_CASED_LAST + 1)):
        low = x.lower()
        if low != x:
            found.setdefault(low[0], {low[0]}).add(x)
            later.update(low[1:])
    found.setdefault("\u03c2", {"\u03c2"}).add("\u03a3")  # Σ -> ς ending a word (Final_Sigma)
    return {c: "".join(sorted(xs)) for c, xs in found.items()}, frozenset(later)


def _glob(text: str) -> str | None:
    """A GLOB pattern (case-sensitive, any script) that finds in stored text every value
    whose lower case holds ``text`` (lower case): each character becomes the class of the
    characters that lower-case to it. None: ``text`` holds a character that can come from
    the one before it (U+0307 after i, from İ), or the pattern would be too long."""
    cases, later = _cases()
    if later.intersection(text):
        return None
    parts = ["*"]
    for c in text:
        xs = cases.get(c, c)
        if len(xs) > 1:
            parts.append(f"[{xs}]")
        elif c in "*?[]":
            parts.append(f"[{c}]")
        else:
            parts.append(c)
    parts.append("*")
    pattern = "".join(parts)
    return pattern if len(pattern.encode()) <= 4 * _MAX_LIKE else None  # bytes: 40,000


def _prefilter(fields: tuple[Field, ...], text: str) -> tuple[str, list[Any]] | None:
    """An SQL condition on the state table that selects every row :func:`_matches` keeps
    for ``text`` (lower case), and few others: the filter then matches in Python only those
    rows instead of every record. None: no such condition (read every row).

    Per column, by what its cell shows (:func:`desktop.format.display_value`): stored text
    (key, str, text — the cell shows its first line, a part of it, then `` …`` when there
    are more: a ``text`` holding a space or ``…`` keeps every value of several lines —,
    enum, ref, date; datetime as its cell shows it in UTC, see :data:`_NOT_UTC_SECONDS`):
    ``col LIKE '%text%'`` for an ASCII ``text`` (SQLite folds
    ASCII only: see :data:`_LOWER_TO_ASCII`), else ``col GLOB`` with a class of case
    variants per character (:func:`_glob`); LIKE and GLOB stop at a NUL, so a value holding
    one is kept; ref (stored as JSON text): the same unless ``text`` holds a character JSON
    escapes; int: its decimal text; bool: ``yes``/``no``; float (``repr``): kept when ``text``
    could be part of a number at all; json and others: kept when set."""
    if not text or len(fields) + 1 > _MAX_CONDS:
        return None
    conds: list[str] = []
    params: list[Any] = []
    if text.isascii():
        op = "LIKE ? ESCAPE '\\'"
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace(
            "_", "\\_") + "%"
        # the characters outside ASCII whose lower case holds an ASCII letter of ``text``
        special = [c for c, low in _LOWER_TO_ASCII.items() if low in text]
        if len(pattern) > _MAX_LIKE:
            return None
    else:
        glob = _glob(text)
        if glob is None:
            return None
        op, pattern, special = "GLOB ?", glob, []  # the classes hold İ and K
    more = bool(_MORE.intersection(text))

    def textual(col: str, nul: bool = True, lines: bool = False) -> None:
        # LIKE stops at a NUL character: a value holding one is kept whatever it holds
        conds.append(" OR ".join([f"{col} {op}",
                                  *([f"instr(CAST({col} AS BLOB), x'00') > 0"] if nul else []),
                                  *(["instr(" + col + ", char(10)) > 0"] if lines else []),
                                  *(f"instr({col}, ?) > 0" for _ in special)]))
        params.append(pattern)
        params.extend(special)

    textual('"key"')
    for f in fields:
        col = '"' + f.name.replace('"', '""') + '"'
        if f.type in _TEXT_TYPES:
            textual(col, lines=more and f.type == "text")
        elif f.type == "datetime":
            # the cell shows the value in UTC (display_datetime): stored in whole seconds with
            # Z, it is that text with T -> space and Z -> " UTC" (the raw LIKE is enough for a
            # text that cannot reach across those); any other value is read (the raw LIKE
            # covers one that is not a valid time, shown as stored)
            textual(col)
            if not set(text) <= _DT_CHARS:
                pass  # no valid time's cell holds it: only one shown as stored (raw LIKE)
            elif _DT_SHOWN.intersection(text):
                conds[-1] += (f" OR replace(replace({col}, 'T', ' '), 'Z', ' UTC') {op}"
                              " OR " + _NOT_UTC_SECONDS.format(c=col))
                params.append(pattern)
            else:  # any valid value of 20 characters is in whole seconds, in UTC
                conds[-1] += f" OR length({col}) <> 20"
        elif f.type == "ref" and not _JSON_ESCAPED.intersection(text):
            textual(col, nul=False)  # stored as JSON text: the key between quotes, NUL escaped
        elif f.type == "int":
            if set(text) <= set("-0123456789"):
                conds.append(f"instr(CAST({col} AS TEXT), ?) > 0")
                params.append(text)
        elif f.type == "bool":
            if text in "yes":
                conds.append(f"{col} = 1")
            if text in "no":
                conds.append(f"{col} = 0")
        elif f.type != "float" or set(text) <= _FLOAT_CHARS:
            conds.append(f"{col} IS NOT NULL")
    return " OR ".join(f"({c})" for c in conds), params


def _read_rows(sat: SatelliteAPI, top: str, fields: tuple[Field, ...], q: _Query,
               skip: frozenset[str], stale: Callable[[], bool] | None,
               ) -> tuple[list[str], list[Any] | None]:
    """The replica's rows of ``q`` without the records ``skip``: keys in order, and their sort
    values when ordered by a field. Runs on any thread."""
    f = fields[q.col] if q.col >= 0 else None
    if not q.filter:
        if f is None:
            keys = sat.confirmed_keys(top)
            if skip:
                keys = [k for k in keys if k not in skip]
            if q.desc:
                keys.reverse()
            return keys, None
        keys, vals = sat.confirmed_order(top, f.name, q.desc)
        if skip:
            pairs = [(k, v) for k, v in zip(keys, vals, strict=True) if k not in skip]
            keys, vals = [k for k, _ in pairs], [v for _, v in pairs]
        return keys, vals
    items: list[tuple[str, Any]] = []
    for chunk in sat.confirmed_scan(top, where=_prefilter(fields, q.filter)):
        if stale is not None and stale():
            raise _Superseded
        for rv in chunk:
            if rv.key not in skip and _matches(fields, q.filter, rv):
                items.append((rv.key, None if f is None else
                              order.sort_value(f, (rv.fields or {}).get(f.name))))
    if f is None:
        keys = [k for k, _ in items]  # the scan is in the order of the keys' text
        if sat.project.model(top).key == "int":
            keys.sort(key=order.key_sort(True))  # by number (those kept, mostly few)
        if q.desc:
            keys.reverse()
        return keys, None
    keys = order.ordered_keys(f, items, q.desc)
    by = dict(items)
    return keys, [by[k] for k in keys]


def _okey(f: Field | None, rv: RecordView, key: str,
          ksort: Callable[[str], Any]) -> tuple[int, int, Any, str]:
    """The order key of a record (key order, by ``ksort``, when ``f`` is None)."""
    if f is None:
        return (0, 0, ksort(key), key)
    return order.order_key(f, order.sort_value(f, (rv.fields or {}).get(f.name)), key)


def _okey_raw(f: Field | None, vals: list[Any] | None, keys: list[str],
              i: int, ksort: Callable[[str], Any]) -> tuple[int, int, Any, str]:
    if f is None or vals is None:
        return (0, 0, ksort(keys[i]), keys[i])
    return order.order_key(f, vals[i], keys[i])


def _without(keys: list[str], drop: set[str] | frozenset[str]) -> list[str]:
    return [k for k in keys if k not in drop] if drop else keys


def _without_vals(keys: list[str], vals: list[Any] | None,
                  drop: set[str] | frozenset[str]) -> list[Any] | None:
    if vals is None or not drop:
        return vals
    return [v for k, v in zip(keys, vals, strict=True) if k not in drop]


def _merged(sat: SatelliteAPI, top: str, fields: tuple[Field, ...], q: _Query,
            pend: frozenset[str], keys: list[str], vals: list[Any] | None,
            ksort: Callable[[str], Any],
            ) -> tuple[list[str], list[Any] | None, dict[str, RecordView]]:
    """The rows ``keys`` read for ``q`` (without the records ``pend``; their sort values
    ``vals`` when ordered by a field) with the records ``pend`` placed in as they are now
    (read in one call: one replica read, not one each): the keys, their sort values (when
    ``vals`` were given) and the views of the records placed. Runs on any thread (the
    worker's read, session 15, or the UI thread's)."""
    f = fields[q.col] if q.col >= 0 else None
    picked: list[tuple[tuple[int, int, Any, str], str]] = []
    views = sat.records_of(top, sorted(pend)) if pend else {}
    shown: dict[str, RecordView] = {}
    raw: dict[str, Any] = {}
    for k, rv in views.items():
        if rv.fields is None or not _matches(fields, q.filter, rv):
            continue
        shown[k] = rv
        ok = _okey(f, rv, k, ksort)
        picked.append((ok, k))
        if f is not None and vals is not None:
            raw[k] = order.sort_value(f, (rv.fields or {}).get(f.name))
    if not picked:
        return keys, vals, shown

    def at(i: int) -> tuple[int, int, Any, str]:
        return _okey_raw(f, vals, keys, i, ksort)

    if len(picked) > MERGE_WALK:
        out = _walk(keys, picked, q.desc, at)
    else:
        ins: list[tuple[int, tuple[int, int, Any, str], str]] = []
        for ok, k in picked:
            ins.append((_position(len(keys), ok, q.desc, at), ok, k))

        def cmp(a: tuple[int, tuple[int, int, Any, str], str],
                b: tuple[int, tuple[int, int, Any, str], str]) -> int:
            if a[0] != b[0]:
                return a[0] - b[0]
            return -1 if order.before(a[1], b[1], q.desc) else 1

        ins.sort(key=functools.cmp_to_key(cmp))
        out = []
        prev = 0
        for pos, _, k in ins:
            out.extend(keys[prev:pos])
            out.append(k)
            prev = pos
        out.extend(keys[prev:])
    if vals is None or f is None:
        return out, None, shown
    have = dict(zip(keys, vals, strict=True))
    have.update(raw)
    return out, [have[k] for k in out], shown


MERGE_WALK = 256
"""More records of pending edits than this to place among the rows read: they are sorted and
placed in one walk along the rows (:func:`_walk`), not each by a binary search (session 14:
the 50,000 of an import took 0.76 s of 1.45 s on the UI thread, 8.3 s under cProfile)."""


def _walk(keys: list[str], picked: list[tuple[tuple[int, int, Any, str], str]], desc: bool,
          at: Callable[[int], tuple[int, int, Any, str]]) -> list[str]:
    """``keys`` (in the order shown, their order keys given by ``at``) with the records
    ``picked`` ((order key, key), none of them in ``keys``) placed where each goes: where
    :func:`_position` would place it, in one pass (n + m comparisons, not m log n)."""
    if desc:
        picked.sort(key=functools.cmp_to_key(
            lambda a, b: -1 if order.before(a[0], b[0], True) else 1))
    else:
        picked.sort(key=lambda p: p[0])  # ascending: order.before is the tuples' order
    out: list[str] = []
    i, n = 0, len(keys)
    before = order.before
    for ok, k in picked:
        while i < n and before(at(i), ok, desc):
            out.append(keys[i])
            i += 1
        out.append(k)
    out.extend(keys[i:])
    return out


def _position(n: int, probe: tuple[int, int, Any, str], desc: bool,
              at: Callable[[int], tuple[int, int, Any, str]]) -> int:
    """Where ``probe`` goes among ``n`` ordered rows whose order keys ``at`` gives."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if order.before(at(mid), probe, desc):
            lo = mid + 1
        else:
            hi = mid
    return lo
