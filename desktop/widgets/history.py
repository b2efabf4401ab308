"""The history view of one record: its events, the record as of a selected revision (time
travel), and "restore this version" (publishes a ``mod`` back to those values)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QItemSelection, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.model import Action, Cmd
from core.revision import Rev
from core.satellite.api import SatelliteAPI
from desktop.format import display_value, short_rev
from desktop.icons import set_icon
from desktop.models.history import HistoryModel

__all__ = ["HistoryView", "restore_actions"]


def restore_actions(sat: SatelliteAPI, top: str, key: str, rev: Rev) -> list[Action]:
    """The actions that bring ``top``/``key`` back to its state as of ``rev``."""
    old = sat.state_at(top, key, rev)
    rv = sat.record(top, key)
    cur = dict(rv.fields) if rv is not None and rv.fields is not None else None
    if old is None:
        return [Action(top, key, Cmd.DEL)] if cur is not None else []
    if cur is None:
        return [Action(top, key, Cmd.NEW, {k: v for k, v in old.items() if v is not None})]
    delta = {k: v for k, v in old.items() if cur.get(k) != v}
    return [Action(top, key, Cmd.MOD, delta)] if delta else []


class HistoryView(QWidget):
    """Events of the selected record; picking one shows the record as of that revision.

    Signals:
        restore_requested(list): the actions that restore the selected version.
    """

    restore_requested = Signal(list)

    def __init__(self, sat: SatelliteAPI, parent: QWidget | None = None):
        super().__init__(parent)
        self._sat = sat
        self.model = HistoryModel(sat, self)
        self.title = QLabel("History")
        self.title.setStyleSheet("font-weight: 600;")
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.table.selectionModel().selectionChanged.connect(self._selected)
        # Tab leaves each table (review a11y 16: they trapped it; Restore was out of reach)
        self.table.setTabKeyNavigation(False)
        self.as_of = QLabel("Select a revision to see the record as it was.")
        self.state = QTableWidget(0, 2)
        self.state.setHorizontalHeaderLabels(["Field", "Value"])
        self.state.verticalHeader().hide()
        self.state.horizontalHeader().setStretchLastSection(True)
        self.state.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.state.setTabKeyNavigation(False)
        self.restore = QPushButton("&Restore this version")
        set_icon(self.restore, "restore")
        self.restore.setEnabled(False)
        self.restore.clicked.connect(self._restore)
        lower = QWidget()
        ll = QVBoxLayout(lower)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.as_of)
        ll.addWidget(self.state, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.restore)
        ll.addLayout(row)
        split = QSplitter()
        split.setOrientation(split.orientation().Vertical)
        split.addWidget(self.table)
        split.addWidget(lower)
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addWidget(split, 1)
        self._rev: Rev | None = None

    def set_record(self, top: str, key: str) -> None:
        """Show the history of a record ("" key: none)."""
        self.model.set_record(top, key)
        self._rev = None
        self.restore.setEnabled(False)
        self.state.setRowCount(0)
        if key:
            rv = self._sat.record(top, key)
            m = self._sat.project.model(top)
            name = (rv.fields or {}).get(m.display) if rv and rv.fields else None
            self.title.setText(f"History of {m.title.lower()} {name or key}")
        else:
            self.title.setText("History")
        self.as_of.setText("Select a revision to see the record as it was.")

    def select_row(self, row: int) -> None:
        self.table.selectRow(row)

    def on_change(self, ch: Any) -> None:
        top, key = self.model.record
        if top and key in ch.records.get(top, ()):
            self.set_record(top, key)

    def _selected(self, sel: QItemSelection, _old: QItemSelection) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        e = self.model.entry(rows[0].row())
        top, key = self.model.record
        self._rev = e.rev
        state = self._sat.state_at(top, key, e.rev)
        note = self.model.note(rows[0].row())
        self.as_of.setText(f"As of {short_rev(e.rev)} ({e.usr or 'unknown user'}):"
                           + (" deleted" if state is None else "")
                           + (f" ({note})" if note else ""))
        m = self._sat.project.model(top)
        self.state.setRowCount(0 if state is None else len(m.fields))
        for i, f in enumerate(m.fields if state is not None else ()):
            assert state is not None
            self.state.setItem(i, 0, QTableWidgetItem(f.title))
            self.state.setItem(i, 1, QTableWidgetItem(display_value(f, state.get(f.name))))
        self.restore.setEnabled(bool(restore_actions(self._sat, top, key, e.rev)))

    def _restore(self) -> None:
        top, key = self.model.record
        if self._rev is None or not key:
            return
        acts = restore_actions(self._sat, top, key, self._rev)
        if acts:
            self.restore_requested.emit(acts)
