"""A form for one record, generated from the model's field types, with inline validation.

Editors by type: ``str`` line edit, ``text`` multi-line, ``int``/``float`` spin boxes,
``bool`` check box, ``date``/``datetime`` pickers, ``enum`` combo box, ``ref`` combo box of the
target records by their display field, ``json`` line edit. Empty spin boxes and pickers show
as blank (their minimum is the "no value" marker), so optional fields can be cleared.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QDate, QDateTime, Qt, QTimeZone, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDateTimeEdit,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.revision import Rev, format_rev, from_datetime, parse_rev, to_datetime
from core.satellite.api import RecordView, SatelliteAPI
from core.schema import Field, Model
from desktop.models.records import ref_label
from desktop.widgets.keys import undo_falls_through

__all__ = ["RecordForm"]

_INT_MIN = -(2**31)
_INT_MAX = 2**31 - 1
_FLOAT_MIN = -1e15
_NO_DATE = QDate(1752, 9, 14)
_UTC = QTimeZone.utc()
_ERR_STYLE = "color: #b3261e; font-size: 11px;"


class _Invalid(Exception):
    """An editor's text that cannot become a value."""


class FieldEditor:
    """One field's editor widget with get/set of the JSON value."""

    def __init__(self, sat: SatelliteAPI, f: Field, on_edit: Any):
        self.field = f
        self.widget: QWidget = self._make(sat, f, on_edit)
        self.error = QLabel()
        self.error.setStyleSheet(_ERR_STYLE)
        self.error.setWordWrap(True)
        self.error.hide()

    def _make(self, sat: SatelliteAPI, f: Field, on_edit: Any) -> QWidget:
        t = f.type
        w: QWidget
        if t == "text":
            te = QPlainTextEdit()
            te.setTabChangesFocus(True)
            te.setFixedHeight(80)
            te.textChanged.connect(on_edit)
            w = te
        elif t == "int":
            sb = QSpinBox()
            sb.setRange(_INT_MIN, _INT_MAX)
            sb.setSpecialValueText(" ")
            sb.valueChanged.connect(on_edit)
            w = sb
        elif t == "float":
            ds = QDoubleSpinBox()
            ds.setDecimals(6)
            ds.setRange(_FLOAT_MIN, 1e15)
            ds.setSpecialValueText(" ")
            ds.valueChanged.connect(on_edit)
            w = ds
        elif t == "bool":
            cb = QCheckBox()
            cb.toggled.connect(on_edit)
            w = cb
        elif t == "date":
            de = QDateEdit()
            de.setCalendarPopup(True)
            de.setDisplayFormat("yyyy-MM-dd")
            de.setMinimumDate(_NO_DATE)
            de.setSpecialValueText(" ")
            de.dateChanged.connect(on_edit)
            w = de
        elif t == "datetime":
            dt = QDateTimeEdit()
            dt.setCalendarPopup(True)
            dt.setTimeZone(_UTC)
            dt.setDisplayFormat("yyyy-MM-dd HH:mm:ss 'UTC'")
            dt.setMinimumDateTime(QDateTime(_NO_DATE, dt.minimumTime(), _UTC))
            dt.setSpecialValueText(" ")
            dt.dateTimeChanged.connect(on_edit)
            w = dt
        elif t in ("enum", "ref"):
            combo = QComboBox()
            combo.addItem("", None)
            if t == "enum":
                for v in f.values:
                    combo.addItem(v, v)
            else:
                self._fill_refs(sat, combo, f.ref)
            combo.currentIndexChanged.connect(on_edit)
            w = combo
        else:
            le = QLineEdit()
            if t == "json":
                le.setPlaceholderText("JSON, e.g. {\"a\": 1}")
            le.textEdited.connect(on_edit)
            w = le
        w.setObjectName(f"field_{f.name}")
        undo_falls_through(w)
        w.setToolTip(f"{f.title} ({f.type}{', required' if f.required else ''})")
        return w

    @staticmethod
    def _fill_refs(sat: SatelliteAPI, combo: QComboBox, top: str) -> None:
        m = sat.project.model(top)
        items = []
        for rv in sat.records(top):
            v = (rv.fields or {}).get(m.display)
            items.append((str(v) if v not in (None, "") else rv.key, rv.key))
        for label, key in sorted(items, key=lambda x: x[0].lower()):
            combo.addItem(label, key)

    def get(self) -> Any:
        """The editor's value as JSON (``None`` for empty). Raises _Invalid with a reason."""
        w, t = self.widget, self.field.type
        if isinstance(w, QPlainTextEdit):
            return w.toPlainText() or None
        if isinstance(w, QSpinBox):
            return None if w.value() == w.minimum() else w.value()
        if isinstance(w, QDoubleSpinBox):
            return None if w.value() == w.minimum() else w.value()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QDateTimeEdit) and t == "datetime":
            if w.dateTime() == w.minimumDateTime():
                return None
            secs = w.dateTime().toSecsSinceEpoch()
            return format_rev(from_datetime(datetime.fromtimestamp(secs, UTC)))
        if isinstance(w, QDateEdit):
            return None if w.date() == w.minimumDate() else w.date().toString("yyyy-MM-dd")
        if isinstance(w, QComboBox):
            if w.currentIndex() < 0:
                return None
            return w.currentData()
        assert isinstance(w, QLineEdit)
        text = w.text()
        if t == "json":
            if not text.strip():
                return None
            try:
                return json.loads(text)
            except ValueError as exc:
                raise _Invalid(f"not valid JSON: {exc.args[0]}") from exc
        return text or None

    def set(self, sat: SatelliteAPI, value: Any) -> None:
        w, t = self.widget, self.field.type
        w.blockSignals(True)
        try:
            if isinstance(w, QPlainTextEdit):
                w.setPlainText("" if value is None else str(value))
            elif isinstance(w, QSpinBox):
                w.setValue(w.minimum() if value is None else int(value))
            elif isinstance(w, QDoubleSpinBox):
                w.setValue(w.minimum() if value is None else float(value))
            elif isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            elif isinstance(w, QDateTimeEdit) and t == "datetime":
                if value is None:
                    w.setDateTime(w.minimumDateTime())
                else:
                    dt = to_datetime(parse_rev(str(value)))
                    w.setDateTime(QDateTime.fromSecsSinceEpoch(int(dt.timestamp()), _UTC))
            elif isinstance(w, QDateEdit):
                w.setDate(w.minimumDate() if value is None
                          else QDate.fromString(str(value), "yyyy-MM-dd"))
            elif isinstance(w, QComboBox):
                i = w.findData(value) if value is not None else 0
                if i < 0 and t == "ref":  # a reference to a record not in the list (yet)
                    w.addItem(ref_label(sat, self.field.ref, str(value)), value)
                    i = w.count() - 1
                w.setCurrentIndex(max(i, 0))
            elif isinstance(w, QLineEdit):
                w.setText("" if value is None else
                          json.dumps(value) if t == "json" else str(value))
        finally:
            w.blockSignals(False)

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))


class RecordForm(QWidget):
    """Edits one record; emits ``save_requested`` with the changed fields.

    Signals:
        save_requested(dict): the fields that differ from the record as loaded (all fields
            for a new record); emitted only when every field is valid.
        dirty_changed(bool): whether the form differs from the record as loaded.
    """

    save_requested = Signal(dict)
    dirty_changed = Signal(bool)

    def __init__(self, sat: SatelliteAPI, model: Model, parent: QWidget | None = None):
        super().__init__(parent)
        self._sat = sat
        self._model = model
        self._key = ""
        self._original: dict[str, Any] = {}
        self._base: Rev | None = None
        self._is_new = False
        self._dirty = False
        self.title = QLabel()
        self.title.setStyleSheet("font-size: 15px; font-weight: 600;")
        self.state = QLabel()
        self.state.setWordWrap(True)
        self.editors: dict[str, FieldEditor] = {}
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for f in model.fields:
            ed = FieldEditor(sat, f, self._edited)
            self.editors[f.name] = ed
            box = QVBoxLayout()
            box.setSpacing(1)
            box.addWidget(ed.widget)
            box.addWidget(ed.error)
            label = QLabel(f.title + (" *" if f.required else ""))
            label.setBuddy(ed.widget)
            form.addRow(label, box)
        self.save_button = QPushButton("Save")
        self.save_button.setObjectName("save")
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self.request_save)
        self.revert_button = QPushButton("Revert")
        self.revert_button.clicked.connect(self.revert)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.save_button)
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addWidget(self.state)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addStretch(1)
        self.clear()

    # -- public --------------------------------------------------------------------------------

    @property
    def key(self) -> str:
        return self._key

    @property
    def is_new(self) -> bool:
        return self._is_new

    @property
    def dirty(self) -> bool:
        return self._dirty

    @property
    def base(self) -> Rev | None:
        """The replica revision the record was loaded at: the base of the edit to save, so
        a change that reached the hub meanwhile becomes a conflict, not overwritten."""
        return self._base

    def clear(self) -> None:
        """Show no record."""
        self._key, self._is_new, self._original, self._base = "", False, {}, None
        for ed in self.editors.values():
            ed.set(self._sat, None)
            ed.show_error("")
        self.title.setText(f"No {self._model.title.lower()} selected")
        self.state.setText("")
        self.setEnabled(False)
        self._set_dirty(False)

    def load(self, rv: RecordView) -> None:
        """Show ``rv`` for editing (drops unsaved edits)."""
        self._key, self._is_new = rv.key, False
        self._base = self._sat.status().rev
        self._original = dict(rv.fields or {})
        self._fill(self._original)
        d = self._original.get(self._model.display)
        self.title.setText(f"{self._model.title}: {d if d not in (None, '') else rv.key}")
        if rv.is_conflict:
            self.state.setText("⚠ In conflict: the hub rejected a change; open Conflicts.")
            self.state.setStyleSheet("color: #b3261e;")
        elif rv.is_pending:
            self.state.setText("Pending: saved here, waiting for the hub to accept it.")
            self.state.setStyleSheet("color: #8a6d00;")
        else:
            self.state.setText("Synced with the hub.")
            self.state.setStyleSheet("color: #2e7d32;")
        self.setEnabled(True)

    def start_new(self, key: str) -> None:
        """Show an empty form (with defaults) for a new record with ``key``."""
        self._key, self._is_new = key, True
        self._base = self._sat.status().rev
        self._original = {}
        self._fill(self._model.defaults())
        self.title.setText(f"New {self._model.title.lower().rstrip('s')}")
        self.state.setText("Fill in the fields and save (Ctrl+S).")
        self.state.setStyleSheet("")
        self.setEnabled(True)
        self._set_dirty(True)

    def set_value(self, name: str, value: Any) -> None:
        """Set one editor's value as if the user typed it."""
        self.editors[name].set(self._sat, value)
        self._edited()

    def values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(value per field, problem per field) of what the form shows."""
        vals: dict[str, Any] = {}
        errs: dict[str, str] = {}
        for name, ed in self.editors.items():
            try:
                v = ed.get()
            except _Invalid as exc:
                errs[name] = str(exc)
                continue
            problem = ed.field.check_value(v)
            if problem is not None:
                errs[name] = f"expected {problem}"
            vals[name] = v
        return vals, errs

    def changes(self) -> dict[str, Any]:
        """The fields that differ from the record as loaded (non-empty fields when new)."""
        vals, _ = self.values()
        if self._is_new:
            return {k: v for k, v in vals.items() if v is not None}
        return {k: v for k, v in vals.items() if v != self._original.get(k)}

    def commit(self) -> None:
        """Take what the editors show as typed (a spin box or picker whose text was not
        interpreted yet: Ctrl+S pressed in it)."""
        for ed in self.editors.values():
            if isinstance(ed.widget, QAbstractSpinBox):
                ed.widget.interpretText()

    def request_save(self) -> None:
        """Validate and, when valid, emit ``save_requested`` with the changed fields."""
        self.commit()
        _, errs = self.values()
        for name, ed in self.editors.items():
            ed.show_error(errs.get(name, ""))
        if errs:
            return
        ch = self.changes()
        if ch or self._is_new:
            self.save_requested.emit(ch)

    def show_errors(self, message: str) -> None:
        """Show a publish error under the field it names (or in the state line)."""
        for name, ed in self.editors.items():
            if f"'{name}'" in message:
                ed.show_error(message)
                return
        self.state.setText(message)
        self.state.setStyleSheet("color: #b3261e;")

    def note_changed(self, rv: RecordView | None) -> None:
        """A change notice for the record while the form has unsaved edits: say so when what
        the user sees now differs from what the form loaded (the edits are kept)."""
        if rv is not None and dict(rv.fields or {}) == self._original:
            return
        self.state.setText("⚠ Changed meanwhile: saving a field that changed since you "
                           "opened the record makes a conflict.")
        self.state.setStyleSheet("color: #b3261e;")

    def revert(self) -> None:
        if self._is_new:
            self._fill(self._model.defaults())
        else:
            self._fill(self._original)

    # -- internals -----------------------------------------------------------------------------

    def _fill(self, values: dict[str, Any]) -> None:
        for name, ed in self.editors.items():
            ed.set(self._sat, values.get(name))
            ed.show_error("")
        self._set_dirty(self._is_new)

    def _edited(self, *_args: Any) -> None:
        _, problems = self.values()
        for name, ed in self.editors.items():
            ed.show_error(problems.get(name, ""))
        self._set_dirty(self._is_new or bool(self.changes()))

    def _set_dirty(self, dirty: bool) -> None:
        self.save_button.setEnabled(dirty)
        self.revert_button.setEnabled(dirty)
        if dirty != self._dirty:
            self._dirty = dirty
            self.dirty_changed.emit(dirty)

    def focus_first(self) -> None:
        first = next(iter(self.editors.values()), None)
        if first is not None:
            first.widget.setFocus(Qt.FocusReason.OtherFocusReason)
