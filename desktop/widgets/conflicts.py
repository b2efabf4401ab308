"""The conflicts view: rejected transactions with base / mine / theirs per field.

Every field of a rejected edit is listed, those that did not conflict marked "(no
conflict)": keep theirs drops the whole edit, and the user sees what it drops before
choosing. Under the table each selected record's conflict in plain words ("they deleted this
record; you changed Name to …") and what each choice does. Keep mine (republish on the
current base), keep theirs (drop my whole edit), or pick per field with the "Keep" check
boxes and "Apply choices". Resolving updates the status at once (the satellite notifies its
listeners).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.errors import OutpostError
from core.satellite.api import Keep, SatelliteAPI
from desktop.icons import icon
from desktop.models.conflicts import ConflictsModel

__all__ = ["ConflictsDialog"]


class ConflictsDialog(QDialog):
    """Lists conflicts and resolves them through :meth:`SatelliteAPI.resolve`.

    Signals:
        failed(str): resolving failed; the message says why.
    """

    failed = Signal(str)

    def __init__(self, sat: SatelliteAPI, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Conflicts — Outpost")
        self.setWindowIcon(icon("conflict"))
        self.resize(1000, 420)
        self._sat = sat
        self.model = ConflictsModel(sat, self)
        self._unlisten = sat.listen(self.model.on_change)
        self.intro = QLabel()
        self.intro.setWordWrap(True)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.keep_mine = QPushButton("Keep mine")
        self.keep_mine.setToolTip("Publish my change again on top of theirs")
        self.keep_theirs = QPushButton("Keep theirs")
        self.keep_theirs.setToolTip(
            "Drop my whole change, every field listed for it (those marked \"no conflict\" "
            "too); the hub's values stay")
        self.apply = QPushButton("Apply choices")
        self.apply.setToolTip("Per field: checked keeps mine, unchecked keeps theirs (a "
                              "delete: checked deletes anyway)")
        self.close_button = QPushButton("Close")
        self.keep_mine.clicked.connect(lambda: self.resolve_selected(Keep.MINE))
        self.keep_theirs.clicked.connect(lambda: self.resolve_selected(Keep.THEIRS))
        self.apply.clicked.connect(lambda: self.resolve_selected(None))
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        for b in (self.keep_mine, self.keep_theirs, self.apply):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        lay = QVBoxLayout(self)
        lay.addWidget(self.intro)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.details)
        lay.addLayout(buttons)
        self.model.modelReset.connect(self._update)
        self.table.selectionModel().selectionChanged.connect(self._show_details)
        self._update()

    def selected_uids(self) -> list[str]:
        """The transactions of the selected rows (all when nothing is selected)."""
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        if not rows:
            return self.model.uids()
        return list(dict.fromkeys(self.model.row(r).uid for r in rows))

    def resolve_selected(self, keep: Keep | None) -> list[str]:
        """Resolve the selected transactions; ``None`` applies the per-field choices.

        Returns the uids of the new transactions published.
        """
        out: list[str] = []
        for uid in self.selected_uids():
            try:
                choice: Keep | dict[str, dict[str, Keep]] = (
                    keep if keep is not None else self.model.picks(uid))
                new = self._sat.resolve(uid, choice)
            except OutpostError as exc:
                self.failed.emit(f"cannot resolve: {exc}")
                self.intro.setText(f"Cannot resolve: {exc}")
                return out
            if new:
                out.append(new)
        self.model.refresh()
        return out

    def _update(self) -> None:
        n = len(self.model.uids())
        if n:
            self.intro.setText(
                (f"{n} changes of yours conflict" if n != 1 else "1 change of yours conflicts")
                + " with changes made on "
                "the hub. For each field: <b>Base</b> is the value you started from, "
                "<b>Mine</b> your change, <b>Theirs</b> the hub's; fields marked <i>no "
                "conflict</i> collided with nothing but were rejected with the rest. Keep "
                "mine sends every field of your change again; <b>keep theirs drops all of "
                "them</b>; or tick per field which to keep and apply.")
        else:
            self.intro.setText("No conflicts: every change you made was accepted or is "
                               "waiting to be sent.")
        for b in (self.keep_mine, self.keep_theirs, self.apply):
            b.setEnabled(bool(n))
        self.table.resizeColumnsToContents()
        for c in range(self.model.columnCount()):
            if self.table.columnWidth(c) > 220:
                self.table.setColumnWidth(c, 220)
        self._show_details()

    def _show_details(self, *_: object) -> None:
        """The selected transactions' conflicts in plain words (all when none is selected)."""
        rows = {i.row() for i in self.table.selectionModel().selectedRows()}
        uids = (list(dict.fromkeys(self.model.row(r).uid for r in sorted(rows)))
                if rows else None)
        self.details.setText("\n".join(f"• {t}" for t in self.model.explain(uids)))

    def detach(self) -> None:
        """Stop following the satellite (the dialog is going away)."""
        self._unlisten()
        self._unlisten = lambda: None
