"""The conflicts view: rejected transactions with base / mine / theirs per field.

Every field of a rejected edit is listed, those that did not conflict marked "(no
conflict)": keep theirs drops the whole edit, and the user sees what it drops before
choosing. Under the table each selected record's conflict in plain words ("they deleted this
record; you changed Name to …") and what each choice does. Keep mine (republish on the
current base), keep theirs (drop my whole edit), or pick per field with the "Keep" check
boxes and "Apply choices". Resolving updates the status at once (the satellite notifies its
listeners).

A record created under a key someone else took meanwhile (two laptops offline gave two records
one key) can be kept both ways: "Keep both" (Ctrl+B) publishes mine under a new key, shown
and editable under the table, and theirs stays; "Keep mine" would replace their record's
values with mine, so it asks first. A required field of a record a resolution creates is shown
ticked and greyed, with a tooltip saying why (``ConflictRow.locked``).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.errors import OutpostError
from core.satellite.api import Keep, SatelliteAPI
from desktop.icons import icon
from desktop.models.conflicts import ConflictsModel

__all__ = ["BOTH_KEY", "ConflictsDialog"]

BOTH_KEY = "Ctrl+B"
"""The conflicts view's shortcut for Keep both."""


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
        self.keep_both = QPushButton("Keep both")
        self.keep_both.setToolTip(
            "For a record you created under a key someone else took meanwhile: add yours as a "
            "new record under the new key shown below (refs of your edit to it follow); their "
            f"record stays as it is ({BOTH_KEY})")
        self.both_action = QAction("Keep both", self)
        self.both_action.setShortcut(QKeySequence(BOTH_KEY))
        self.both_action.triggered.connect(self.keep_both.click)  # a disabled button: no-op
        self.addAction(self.both_action)
        self.apply = QPushButton("Apply choices")
        self.apply.setToolTip("Per field: checked keeps mine, unchecked keeps theirs (a "
                              "delete: checked deletes anyway)")
        self.close_button = QPushButton("Close")
        self.keep_mine.clicked.connect(lambda: self.resolve_selected(Keep.MINE))
        self.keep_theirs.clicked.connect(lambda: self.resolve_selected(Keep.THEIRS))
        self.keep_both.clicked.connect(lambda: self.resolve_selected(Keep.BOTH))
        self.apply.clicked.connect(lambda: self.resolve_selected(None))
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        for b in (self.keep_mine, self.keep_theirs, self.keep_both, self.apply):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        # keep both: which records clash, what each choice does, the new key (editable)
        self.both_text = QLabel()
        self.both_text.setWordWrap(True)
        self.both_text.setTextFormat(Qt.TextFormat.PlainText)
        self.new_key = QLineEdit()
        self.new_key.setToolTip("The key your record gets with Keep both: a free one is "
                                "offered; type another if you like (it must be free)")
        self.new_key_label = QLabel("New key for your record (Keep both):")
        self.new_key_label.setBuddy(self.new_key)
        key_row = QHBoxLayout()
        key_row.addWidget(self.new_key_label)
        key_row.addWidget(self.new_key, 1)
        self._proposed: dict[str, dict[str, str]] = {}  # uid -> {"top key": new key}
        self._typed: tuple[str, str] | None = None  # (uid, sig) the line edit holds a key of
        self.confirm_box: QMessageBox | None = None
        lay = QVBoxLayout(self)
        lay.addWidget(self.intro)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.details)
        lay.addWidget(self.both_text)
        lay.addLayout(key_row)
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

        Keep mine of a transaction that created a record under a key someone else took
        meanwhile asks first (it replaces their record's values): nothing is resolved until
        the question (:attr:`confirm_box`) is answered. Keep both resolves the selected
        transactions that have such a record.

        Returns the uids of the new transactions published.
        """
        uids = self.selected_uids()
        if keep == Keep.MINE:
            clashing = [(u, sig) for u in uids for sig in self._clashes(u)]
            if clashing:
                self._confirm_mine(uids, clashing)
                return []
        if keep == Keep.BOTH:
            uids = [u for u in uids if self._clashes(u)]
        return self._resolve(uids, keep)

    def _resolve(self, uids: list[str], keep: Keep | None) -> list[str]:
        out: list[str] = []
        for uid in uids:
            try:
                choice: Keep | dict[str, dict[str, Keep]] = (
                    keep if keep is not None else self.model.picks(uid))
                keys = self._keys(uid) if keep == Keep.BOTH else None
                new = self._sat.resolve(uid, choice, keys=keys)
            except OutpostError as exc:
                self.failed.emit(f"cannot resolve: {exc}")
                self.intro.setText(f"Cannot resolve: {exc}")
                return out
            if new:
                out.append(new)
        self.model.refresh()
        return out

    def _clashes(self, uid: str) -> dict[str, str]:
        """The records of ``uid`` created under a key taken meanwhile and the new key keep
        both offers each (asked once per transaction: a UUID offered is not drawn again)."""
        got = self._proposed.get(uid)
        if got is None:
            try:
                got = self._sat.both_keys(uid)
            except OutpostError:
                got = {}
            self._proposed[uid] = got
        return got

    def _free(self, sig: str, key: str) -> bool:
        rv = self._sat.record(sig.partition(" ")[0], key)
        return rv is None or (rv.fields is None and rv.confirmed is None)

    def _keys(self, uid: str) -> dict[str, str]:
        keys = dict(self._clashes(uid))
        if self._typed is not None and self._typed[0] == uid and not self.new_key.isHidden():
            keys[self._typed[1]] = self.new_key.text()
        return keys

    def _confirm_mine(self, uids: list[str], clashing: list[tuple[str, str]]) -> None:
        """Ask before keep mine replaces the values of records someone else created."""
        names = ", ".join(dict.fromkeys(self._record_name(u, sig) for u, sig in clashing))
        box = QMessageBox(QMessageBox.Icon.Warning, "Keep mine replaces their record",
                          f"You created {names} under a key someone else used for their own "
                          "record meanwhile.\n\nKeep mine replaces the values of their record "
                          "with yours: one record is left, theirs changed. Keep both adds "
                          "yours as a new record under a new key and leaves theirs as it is.",
                          QMessageBox.StandardButton.Cancel, self)
        replace = box.addButton("Replace their record", QMessageBox.ButtonRole.AcceptRole)
        both = box.addButton("Keep both instead", QMessageBox.ButtonRole.ActionRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def answered(button: QAbstractButton) -> None:
            self.confirm_box = None
            if button is replace:
                self._resolve(uids, Keep.MINE)
            elif button is both:
                self._resolve([u for u in uids if self._clashes(u)], Keep.BOTH)

        box.buttonClicked.connect(answered)
        self.confirm_box = box
        box.open()

    def _record_name(self, uid: str, sig: str) -> str:
        top, _, key = sig.partition(" ")
        label = next((r.label for r in self.model.rows()
                      if r.uid == uid and (r.top, r.key) == (top, key)), "") or sig
        return f"{label} (key {key})"

    def _update_both(self, uids: list[str]) -> None:
        """Keep both's sentence, button and new key for the transactions ``uids``."""
        clashing = [(u, sig, k) for u in uids for sig, k in self._clashes(u).items()]
        self.keep_both.setEnabled(bool(clashing))
        self.both_action.setEnabled(bool(clashing))
        one = len(clashing) == 1
        self.new_key.setVisible(one)
        self.new_key_label.setVisible(one)
        if not clashing:
            self.both_text.setText("")
            self.both_text.setVisible(False)
            self._typed = None
            return
        if one:
            u, sig, k = clashing[0]
            if self._typed != (u, sig):
                self._typed = (u, sig)
                self.new_key.setText(k)
            where = "under the key below"
        else:
            where = "under new keys (" + ", ".join(
                f"{self._record_name(u, sig)} → {k}" for u, sig, k in clashing) + ")"
        names = ", ".join(dict.fromkeys(self._record_name(u, sig) for u, sig, _ in clashing))
        self.both_text.setText(
            f"You created {names} under a key someone else used for their own record "
            f"meanwhile. Keep both: yours is added as a new record {where}, theirs stays as "
            "it is. Keep mine: your values replace theirs on their record, one record is "
            "left. Keep theirs: yours is dropped.")
        self.both_text.setVisible(True)

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
        # keys offered stay while they are free (hub data may have taken one since)
        listed = set(self.model.uids())
        self._proposed = {u: k for u, k in self._proposed.items()
                          if u in listed and all(self._free(sig, key) for sig, key in k.items())}
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
        self._update_both(uids if uids is not None else self.model.uids())

    def detach(self) -> None:
        """Stop following the satellite (the dialog is going away)."""
        self._unlisten()
        self._unlisten = lambda: None
