"""A form for one record, generated from the model's field types, with inline validation.

Editors by type: ``str`` line edit, ``text`` multi-line, ``int``/``float`` number boxes (spin
boxes whose text is the value: every 64-bit int, every float as its shortest exact text),
``bool`` check box (partly checked: no value), ``date``/``datetime`` boxes whose text is the
value, in UTC with milliseconds, with a calendar button (:class:`DateBox`), ``enum`` combo
box, ``ref`` combo box of the target records by their display field, ``json`` line edit.
Empty number and date boxes are no value, so optional fields can be cleared (a required one
says it is required); text that is not a value yet is never dropped: the field says what is
wrong with it, naming the format, and Save waits until it is fixed.

A save sends only the fields the user changed: each editor remembers what it showed when the
record was loaded, and an editor whose widget still shows that gives back the stored value
itself, whatever the widget can show of it (a text's CRLF, a date-time's offset or digits past
the millisecond). A value an editor cannot show at all (a value of the wrong type) is shown
read-only, with a note, and kept as it is.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from typing import Any, cast

from PySide6.QtCore import QDate, QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCalendarWidget,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.revision import (
    DATE_FORM,
    DATE_TEXT,
    DATETIME_FORMS,
    DATETIME_TEXT,
    Rev,
    format_rev,
    parse_rev,
    to_datetime,
)
from core.revision import read_date as core_read_date
from core.revision import read_datetime as core_read_datetime
from core.satellite.api import RecordView, SatelliteAPI
from core.schema import MAX_INT, MAX_NESTING, Field, Model, nesting
from desktop.format import BAD_HUB_VALUE
from desktop.icons import icon
from desktop.look import relative_font, set_tone
from desktop.models.records import ref_label
from desktop.widgets.elide import ElidedLabel
from desktop.widgets.keys import undo_falls_through

__all__ = ["REVERT_KEY", "RecordForm"]

REVERT_KEY = "Ctrl+R"
# the state line of a record with unsaved changes
UNSAVED = f"Unsaved changes: save (Ctrl+S) or revert ({REVERT_KEY})."
"""The window's Revert (named in the state line); Esc in a field reverts that field."""

_SMALL = 0.9  # a field's note and error: this share of the user's font size (was 11 px)
_TITLE = 1.25  # the form's title (was 15 px)
_INT_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*\Z", re.ASCII)
_LONG = 2**31 - 1  # a line edit's longest text (its default is 32,767 characters)


_KINDS = {"text": "text", "int": "num", "float": "num", "bool": "bool", "date": "date",
          "datetime": "datetime", "enum": "combo", "ref": "combo"}
"""The editor kind of each field type (the others: a line edit)."""


class _Invalid(Exception):
    """An editor's text that cannot become a value."""


WINDOW_MNEMONICS = frozenset("fesh")
"""The main window's menus' Alt+letters (File, Edit, Sync, Help): no field label takes them."""


def mnemonic(title: str, taken: set[str]) -> str:
    """``title`` for a label with an Alt+letter: "&" before its first letter not in
    ``taken`` (added to it); none free: no mnemonic. A "&" of the title shows as itself."""
    text = title.replace("&", "&&")
    for i, ch in enumerate(text):
        if ch.isalnum() and ch.isascii() and ch.lower() not in taken:
            taken.add(ch.lower())
            return text[:i] + "&" + text[i:]
    return text


def same(a: Any, b: Any) -> bool:
    """Whether two JSON values are the same value of the same type (``1`` is not ``1.0`` nor
    ``True``, ``-0.0`` is not ``0.0``): what decides that a field changed."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class NumberBox(QAbstractSpinBox):
    """A spin box whose text is the value: an ``int`` field's every 64-bit integer, a
    ``float`` field's every finite double as its shortest exact text (``repr``). Blank is no
    value. Any text may be typed (the form says under the field what is wrong with it); the
    arrows and the wheel add or take one."""

    edited = Signal()

    def __init__(self, kind: str):
        super().__init__()
        self._kind = kind
        self.lineEdit().setMaxLength(_LONG)
        self.lineEdit().textEdited.connect(self._typed)

    def _typed(self, _text: str) -> None:
        self.edited.emit()

    def text_value(self) -> str:
        return self.lineEdit().text()

    def set_text(self, text: str) -> None:
        self.lineEdit().setText(text)

    def number(self) -> int | float | None:
        """The value of the text (``0`` for blank: where the arrows start); None when it is
        not a number."""
        text = self.lineEdit().text().strip()
        if not text:
            return 0
        try:
            if self._kind == "int":
                return int(text) if _INT_TEXT.match(text) else None
            v = float(text)
        except (ValueError, OverflowError):
            return None
        return v if math.isfinite(v) else None

    # Qt calls these; an exception escaping one of them would take the app down
    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        return QValidator.State.Acceptable, text, pos

    def fixup(self, text: str) -> str:
        return text

    def stepBy(self, steps: int) -> None:
        v = self.number()
        if v is None:
            return
        if self._kind == "int":
            n = min(max(int(v) + steps, -MAX_INT - 1), MAX_INT)
            self.set_text(str(n))
        else:
            f = float(v) + steps
            if not math.isfinite(f):
                return
            self.set_text(repr(f))
        self.edited.emit()

    def stepEnabled(self) -> QAbstractSpinBox.StepEnabledFlag:
        if self.number() is None or self.isReadOnly():
            return QAbstractSpinBox.StepEnabledFlag.StepNone
        return (QAbstractSpinBox.StepEnabledFlag.StepUpEnabled
                | QAbstractSpinBox.StepEnabledFlag.StepDownEnabled)

    def sizeHint(self) -> QSize:
        h = super().sizeHint()
        return QSize(max(h.width(), self.fontMetrics().horizontalAdvance("-0123456789.0123")
                         + 40), h.height())

    minimumSizeHint = sizeHint


DATE_FORMAT = DATE_FORM  # core's, as `outpost pub` and CSV import read them
DATETIME_FORMAT = DATETIME_FORMS  # core's, as `outpost pub` and CSV import read them


class DateBox(QLineEdit):
    """A ``date`` or ``datetime`` field's box: its text is the value (``2026-11-27``,
    ``2026-11-27 10:30:00.000 UTC``), blank is no value, any text may be typed (the form
    says under the field what is wrong with it, naming the format). The calendar button
    (or Alt+Down, F4) opens a calendar on the date shown, else on today; a date picked there
    replaces the date and keeps the time typed.

    Until session 11 these were Qt's date pickers, with year 100 as "no value": typing into
    an empty one gave " 0261127 10:30:00.000 UTC", saved as no value without a word, an
    optional date could not be cleared, and the calendar opened on 0100-01-01."""

    edited = Signal()

    def __init__(self, kind: str):
        super().__init__()
        self._kind = kind
        self.setPlaceholderText("YYYY-MM-DD" if kind == "date" else "YYYY-MM-DD HH:MM UTC")
        self.textEdited.connect(lambda _t: self.edited.emit())
        self._calendar = QCalendarWidget()
        self._calendar.setWindowFlags(Qt.WindowType.Popup)
        self._calendar.setGridVisible(True)
        self._calendar.clicked.connect(self.pick)
        self._calendar.activated.connect(self.pick)
        self._calendar.installEventFilter(self)
        self.calendar_action = self.addAction(icon("calendar"),
                                              QLineEdit.ActionPosition.TrailingPosition)
        self.calendar_action.setProperty("outpost_icon", "calendar")  # (refresh_icons)
        self.calendar_action.setToolTip("Pick a date (Alt+Down)")
        self.calendar_action.triggered.connect(self.open_calendar)

    def calendarWidget(self) -> QCalendarWidget:
        """The calendar the button opens (as QDateTimeEdit names it)."""
        return self._calendar

    def shown_date(self) -> QDate | None:
        """The date of the text shown (None: blank or not a date yet)."""
        if self._kind == "date":  # every form core's parser reads (21.11.2026 too)
            try:
                y, mo, da = core_read_date(self.text()).split("-")
            except ValueError:
                return None
            return QDate(int(y), int(mo), int(da))
        m = DATETIME_TEXT.match(self.text())
        if not m:
            return None
        d = QDate(int(m[1]), int(m[2]), int(m[3]))
        return d if d.isValid() else None

    def open_calendar(self) -> QCalendarWidget:
        """The calendar, on the date shown or today."""
        cal = self._calendar
        cal.setSelectedDate(self.shown_date() or QDate.currentDate())
        if not self.isReadOnly():
            cal.adjustSize()
            cal.move(self.mapToGlobal(self.rect().bottomLeft()))
            cal.show()
            cal.setFocus(Qt.FocusReason.PopupFocusReason)
        return cal

    def pick(self, d: QDate) -> None:
        """Take ``d`` from the calendar: the date part of the text, the time kept (midnight
        when none is shown)."""
        self._calendar.hide()
        if self.isReadOnly():
            return
        day = d.toString("yyyy-MM-dd")
        if self._kind == "date":
            text = day
        else:
            m = DATETIME_TEXT.match(self.text())
            if m and m[4] is not None:
                # the time and its zone as typed (an offset kept: merge review 11, a text
                # with +02:00 became midnight UTC of the day picked)
                zone = "UTC" if m[9] is None else f"{m[9]}{m[10]}:{m[11]}"
                text = (f"{day} {int(m[4]):02d}:{m[5]}:{m[6] or '00'}."
                        f"{(m[7] or '0')[:3].ljust(3, '0')} {zone}")
            else:
                text = f"{day} 00:00:00.000 UTC"
        self.setText(text)
        self.setFocus(Qt.FocusReason.PopupFocusReason)
        self.edited.emit()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_F4 or (
                event.key() == Qt.Key.Key_Down
                and event.modifiers() & Qt.KeyboardModifier.AltModifier):
            self.open_calendar()
            return
        super().keyPressEvent(event)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if (obj is self._calendar and event.type() == QEvent.Type.KeyPress
                and isinstance(event, QKeyEvent) and event.key() == Qt.Key.Key_Escape):
            self._calendar.hide()
            return True
        return super().eventFilter(obj, event)


def date_text(value: str) -> str:
    """A stored ``date`` as its box shows it (checked: ValueError when it is not one)."""
    if len(value) != 10:
        raise ValueError(f"{value!r} is not a date")
    return _dt.date.fromisoformat(value).isoformat()


def datetime_text(value: str) -> str:
    """A stored ``datetime`` as its box shows it: in UTC, with milliseconds."""
    dt = to_datetime(parse_rev(value))
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d} {dt.hour:02d}:{dt.minute:02d}:"
            f"{dt.second:02d}.{dt.microsecond // 1000:03d} UTC")


def read_date(text: str) -> str | None:
    """The ``date`` value of a box's text (None: blank): read by core's parser
    (:func:`core.revision.read_date`), as ``outpost pub`` and CSV import read it. Raises
    _Invalid naming the format."""
    if not text.strip():
        return None
    try:
        return core_read_date(text)
    except ValueError as exc:
        if DATE_TEXT.match(text) is None:  # not even the form: the calendar helps
            raise _Invalid(f"{exc}, or pick it from the calendar") from None
        raise _Invalid(str(exc)) from None


def read_datetime(text: str) -> str | None:
    """The ``datetime`` value of a box's text (None: blank): UTC unless the text gives an
    offset; read by core's parser (:func:`core.revision.read_datetime`), as ``outpost pub``
    and CSV import read it. Raises _Invalid naming the forms."""
    if not text.strip():
        return None
    try:
        return format_rev(core_read_datetime(text))
    except ValueError as exc:
        raise _Invalid(str(exc)) from None


def _text_of(value: Any) -> str:
    """A value as the read-only box shows it (a text as is, anything else as JSON)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


class _EscReverts(QObject):
    """Esc in a field the user changed puts back its value as loaded (as a form dialog's
    Esc; the rest of the form is left as it is), one step of the window's undo
    (:attr:`RecordForm.field_reverted`). Esc in a field as loaded goes on as usual."""

    def __init__(self, editor: FieldEditor):
        super().__init__(editor.widget)
        self._editor = editor

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if (event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent)
                and event.key() == Qt.Key.Key_Escape
                and event.modifiers() == Qt.KeyboardModifier.NoModifier):
            return self._editor.revert_typing()
        return False


class _ChoiceUndo(QObject):
    """Ctrl+Z / Ctrl+Shift+Z (Ctrl+Y) of a check box's or a choice box's own: the user's
    changes of it since its value was last set (:meth:`FieldEditor.set`), undone and redone
    as a text field's typing is (session 13: these had none, so the advice "Ctrl+Z in the
    field" of a refused undo could not be followed there). With none of its own to undo or
    redo, the keys go on to the window's undo (as :func:`~desktop.widgets.keys.
    undo_falls_through` does for text fields)."""

    def __init__(self, editor: FieldEditor):
        super().__init__(editor.widget)
        self._editor = editor
        self._undo: list[tuple[bool, int]] = []
        self._redo: list[tuple[bool, int]] = []
        self._last = self._state()
        self._moving = False
        w = editor.widget
        if isinstance(w, QCheckBox):
            w.stateChanged.connect(self._changed)
        elif isinstance(w, QComboBox):
            w.currentIndexChanged.connect(self._changed)

    def _state(self) -> tuple[bool, int]:
        w = self._editor.widget
        if isinstance(w, QCheckBox):
            return (w.isTristate(), w.checkState().value)
        return (False, cast(QComboBox, w).currentIndex())

    def _put(self, state: tuple[bool, int]) -> None:
        w = self._editor.widget
        self._moving = True
        try:
            if isinstance(w, QCheckBox):
                w.setTristate(state[0])
                w.setCheckState(Qt.CheckState(state[1]))
            else:
                cast(QComboBox, w).setCurrentIndex(state[1])
        finally:
            self._moving = False
        self._last = self._state()

    def _changed(self, *_: Any) -> None:
        if self._moving:
            return
        now = self._state()
        if now != self._last:
            self._undo.append(self._last)
            self._redo.clear()
            self._last = now

    def reset(self) -> None:
        """The value was set (loaded, put back): nothing of the user's to undo."""
        self._undo.clear()
        self._redo.clear()
        self._last = self._state()

    def has(self, redo: bool) -> bool:
        return bool(self._redo if redo else self._undo)

    def step(self, redo: bool) -> None:
        """Undo (``redo``: redo) the user's last change of the box."""
        src, dst = (self._redo, self._undo) if redo else (self._undo, self._redo)
        if src:
            dst.append(self._state())
            self._put(src.pop())

    @staticmethod
    def _which(event: QKeyEvent) -> bool | None:
        """False: the undo keys, True: the redo keys, None: neither."""
        if event.matches(QKeySequence.StandardKey.Undo):
            return False
        if event.matches(QKeySequence.StandardKey.Redo) or QKeySequence(
                event.keyCombination()) == QKeySequence("Ctrl+Shift+Z"):
            return True
        return None

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        t = event.type()
        if t in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) and isinstance(
                event, QKeyEvent):
            redo = self._which(event)
            if redo is not None and self.has(redo):
                if t == QEvent.Type.ShortcutOverride:
                    event.accept()  # claimed: the key press comes here, not to the window
                else:
                    self.step(redo)
                return True
        return False


class FieldEditor:
    """One field's editor widget with get/set of the JSON value.

    :meth:`load` shows a stored value and remembers what the widget shows of it; :meth:`get`
    gives that stored value back, exactly, while the widget still shows it (``touched`` is
    False), and the widget's value once the user changed it."""

    def __init__(self, sat: SatelliteAPI, f: Field, on_edit: Any, on_revert: Any = None):
        self.field = f
        self._sat = sat
        self._on_edit = on_edit
        self._on_revert = on_revert  # (fields, raw) of the typing Esc reverted
        # which editor: the branches below test this string (isinstance on Qt classes cost
        # a few µs each, several per field, on every record selected)
        self._kind = _KINDS.get(f.type, "line")
        self.widget: QWidget = self._make(sat, f, on_edit)
        # shown instead of the editor for a value it cannot show (read-only, kept as is)
        self.raw = QLineEdit()
        self.raw.setReadOnly(True)
        self.raw.setMaxLength(_LONG)
        self.raw.setObjectName(f"raw_{f.name}")
        self.raw.hide()
        # their colours readable on the palette, their size the user's font's (review a11y
        # 16: fixed #b3261e / #8a6d00 read 2.2:1 / 2.9:1 on a dark theme, 11 px at any font)
        self.note = QLabel()
        set_tone(self.note, "warn")
        self.note.setFont(relative_font(self.note, _SMALL))
        self.note.setWordWrap(True)
        self.note.hide()
        self.error = QLabel()
        set_tone(self.error, "error")
        self.error.setFont(relative_font(self.error, _SMALL))
        self.error.setWordWrap(True)
        self.error.hide()
        # what a screen reader says of the widget besides its name, without the error
        self._description = self.widget.accessibleDescription()
        self._loaded: Any = None      # the value load() was given
        self._shown: Any = None       # the widget's state right after load()
        self._kept = False            # the value is shown read-only (the editor cannot)
        self._eol = "\n"              # a text field's line break when it is edited
        esc = _EscReverts(self)
        self.widget.installEventFilter(esc)
        # check and choice boxes: a Ctrl+Z of their own, as text fields have (session 13)
        self._choice_undo: _ChoiceUndo | None = None
        if isinstance(self.widget, QCheckBox | QComboBox):
            self._choice_undo = _ChoiceUndo(self)
            self.widget.installEventFilter(self._choice_undo)
        if isinstance(self.widget, QAbstractSpinBox):
            self.widget.lineEdit().installEventFilter(esc)

    def revert_typing(self) -> bool:
        """Put back the value the field showed when loaded (Esc); False when it shows it.
        The typing goes to ``on_revert`` (the window makes it an undo step: user review 12,
        Esc threw it away for good, and the Ctrl+Z pressed to get it back undid an earlier
        save of another record instead)."""
        if not self.touched:
            return False
        typed = self.typing()
        self.put_back_loaded()
        if self._on_revert is not None:
            self._on_revert(*typed)
        return True

    def put_back_loaded(self) -> None:
        """Show the value as loaded again (as if typed), saying nothing."""
        self.set(self._sat, self._loaded)
        self._on_edit()

    def typing(self) -> tuple[dict[str, Any], dict[str, str]]:
        """What the field shows as a draft's ``fields`` and ``raw`` (text not valid yet)."""
        raw = self.raw_text()
        if raw is not None:
            return {}, {self.field.name: raw}
        try:
            return {self.field.name: self.get()}, {}
        except _Invalid:  # not valid and no text to keep (cannot happen today)
            return {}, {}

    def _make(self, sat: SatelliteAPI, f: Field, on_edit: Any) -> QWidget:
        t = f.type
        w: QWidget
        if t == "text":
            te = QPlainTextEdit()
            te.setTabChangesFocus(True)
            te.setFixedHeight(80)
            te.textChanged.connect(on_edit)
            w = te
        elif t in ("int", "float"):
            nb = NumberBox(t)
            nb.edited.connect(on_edit)
            w = nb
        elif t == "bool":
            cb = QCheckBox()
            cb.stateChanged.connect(self._bool_changed)
            cb.stateChanged.connect(on_edit)
            w = cb
        elif t in ("date", "datetime"):
            db = DateBox(t)
            db.setMaxLength(_LONG)
            db.edited.connect(on_edit)
            w = db
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
            le.setMaxLength(_LONG)
            if t == "json":
                le.setPlaceholderText("JSON, e.g. {\"a\": 1}")
            le.textEdited.connect(on_edit)
            w = le
        w.setObjectName(f"field_{f.name}")
        undo_falls_through(w)
        w.setToolTip(f"{f.title} ({f.type}{', required' if f.required else ''})")
        return w

    def _bool_changed(self, state: int) -> None:
        # partly checked shows "no value"; once the user clicks, the box holds yes or no
        w = self.widget
        assert isinstance(w, QCheckBox)
        if w.isTristate() and state != Qt.CheckState.PartiallyChecked.value:
            w.setTristate(False)

    @staticmethod
    def _fill_refs(sat: SatelliteAPI, combo: QComboBox, top: str) -> None:
        m = sat.project.model(top)
        items = []
        for rv in sat.records(top):
            v = (rv.fields or {}).get(m.display)
            items.append((str(v) if v not in (None, "") else rv.key, rv.key))
        for label, key in sorted(items, key=lambda x: x[0].lower()):
            combo.addItem(label, key)

    # -- the value -----------------------------------------------------------------------------

    @property
    def kept(self) -> bool:
        """Whether the loaded value is shown read-only (the editor cannot show it)."""
        return self._kept

    @property
    def touched(self) -> bool:
        """Whether the widget shows something else than what it showed when loaded."""
        return not self._kept and self._state() != self._shown

    def get(self) -> Any:
        """The editor's value as JSON (``None`` for empty): the loaded value itself while the
        widget shows what it showed then. Raises _Invalid with a reason."""
        if not self.touched:
            return self._loaded
        return self._read()

    def _state(self) -> Any:
        """What the widget shows, comparable (a snapshot of its text, date, index...)."""
        w, k = self.widget, self._kind
        if k == "text":
            return cast(QPlainTextEdit, w).document().toRawText()
        if k == "num":
            return cast(NumberBox, w).text_value()
        if k == "bool":
            return cast(QCheckBox, w).checkState().value
        if k == "combo":
            return cast(QComboBox, w).currentIndex()
        return cast(QLineEdit, w).text()

    def _read(self) -> Any:
        """The value the widget shows. Raises _Invalid with a reason."""
        w, t, k = self.widget, self.field.type, self._kind
        if k == "text":
            w = cast(QPlainTextEdit, w)
            # raw text: a no-break space stays one (toPlainText makes it a space); each
            # paragraph break is the text's line break (CRLF for a text loaded with CRLF)
            return w.document().toRawText().replace("\u2029", self._eol) or None
        if k == "num":
            text = cast(NumberBox, w).text_value().strip()
            if not text:
                return None
            if t == "int":
                if not _INT_TEXT.match(text):
                    raise _Invalid("not a whole number (e.g. 42 or -7)")
                return int(text)
            try:
                return float(text)
            except ValueError:
                raise _Invalid("not a number (e.g. 46.12, -0.5 or 1.5e20)") from None
        if k == "bool":
            w = cast(QCheckBox, w)
            if w.checkState() == Qt.CheckState.PartiallyChecked:
                return None
            return w.isChecked()
        if k == "datetime":
            return read_datetime(cast(DateBox, w).text())
        if k == "date":
            return read_date(cast(DateBox, w).text())
        if k == "combo":
            w = cast(QComboBox, w)
            if w.currentIndex() < 0:
                return None
            return w.currentData()
        text = cast(QLineEdit, w).text()
        if t == "json":
            if not text.strip():
                return None
            deep = f"nested more than {MAX_NESTING} levels deep (lists and objects): flatten it"
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise _Invalid(f"not valid JSON: {exc.args[0]}") from exc
            except RecursionError:  # the stdlib's json, past about 1,000 levels
                raise _Invalid(deep) from None
            if nesting(value) > MAX_NESTING:  # the hub would refuse it (docs/schema.md)
                raise _Invalid(deep)
            return value
        return text or None

    def raw_text(self) -> str | None:
        """The text typed in a box whose value is not valid yet ("46.1x" in a number box,
        half-typed JSON); None when the editor's value is valid (or it has no text)."""
        try:
            self.get()
            return None
        except _Invalid:
            pass
        if self._kind == "num":
            return cast(NumberBox, self.widget).text_value()
        if isinstance(self.widget, QLineEdit):
            return self.widget.text()
        return None

    def set_raw_text(self, text: str) -> None:
        """Show ``text`` as typed (:meth:`raw_text` of a draft), valid or not."""
        if self._kind == "num":
            cast(NumberBox, self.widget).set_text(text)
        elif isinstance(self.widget, QLineEdit):
            self.widget.setText(text)

    def load(self, sat: SatelliteAPI, value: Any) -> None:
        """Show a stored ``value`` and remember it: until the user changes the widget,
        :meth:`get` gives exactly this value back. A value the widget cannot show is shown
        read-only with a note instead (never an exception: the rest of the form loads)."""
        was_kept = self._kept  # the last record's value was kept read-only
        self._loaded, self._kept = value, False
        if self.note.text():
            self._say("")
        why = ""
        try:
            self.set(sat, value)
            shown = self._read()
            if not self._equivalent(shown, value):
                why = f"this {self.field.type} box would show it as {_text_of(shown)!r}"
        except (_Invalid, ValueError, TypeError, OverflowError, AttributeError) as exc:
            why = str(exc) or type(exc).__name__
        self._shown = self._state()
        if why and self.field.type in ("str", "text") and isinstance(value, str):
            # shown with a difference the user can see (line breaks, an invisible mark):
            # kept as stored unless the field is edited
            self._say("Holds characters this box shows differently (line breaks of mixed "
                      "kinds, a byte order mark...): kept exactly as stored unless you edit "
                      "this field.")
        elif why:
            self._keep(value, why, was_kept)
        if was_kept and not self._kept:  # the editor is back (shown and hidden only when
            self.widget.show()  # that changes: show() took about 60 us a widget)
            self.raw.hide()

    def _equivalent(self, shown: Any, value: Any) -> bool:
        """Whether what the widget shows is the stored value (or the same instant, for a
        date-time written with an offset or digits past the millisecond)."""
        if same(shown, value) or (value == "" and shown is None):
            return True
        if (self.field.type == "float" and type(value) is int and type(shown) is float
                and shown == value):
            return True  # a whole number given for a float field (exact up to 2**53)
        if self.field.type == "datetime" and isinstance(value, str) and isinstance(shown, str):
            try:
                return parse_rev(value) == parse_rev(shown)
            except ValueError:
                return False
        return False

    def _keep(self, value: Any, why: str, shown: bool = False) -> None:
        """Show ``value`` read-only; ``shown``: the read-only box shows already."""
        self._kept = True
        if not shown:
            self.widget.hide()
        self.raw.setText(_text_of(value))
        self.raw.setCursorPosition(0)
        if not shown:
            self.raw.show()
        self._say(f"This form cannot edit this value ({why}): it is shown as stored and "
                  "kept as it is when you save.")

    def _say(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def set(self, sat: SatelliteAPI, value: Any) -> None:
        """Show ``value`` in the widget (as if typed: what :meth:`load` remembered stays)."""
        w, t, k = self.widget, self.field.type, self._kind
        w.blockSignals(True)
        try:
            if k == "text":
                w = cast(QPlainTextEdit, w)
                text = "" if value is None else str(value)
                crlf = text.count("\r\n")
                self._eol = "\r\n" if crlf and crlf >= text.count("\n") - crlf else "\n"
                w.setPlainText(text)
            elif k == "num":
                w = cast(NumberBox, w)
                if value is None:
                    w.set_text("")
                elif t == "float" and isinstance(value, float):
                    w.set_text(repr(value))
                elif isinstance(value, bool) or not isinstance(value, int | float):
                    raise TypeError(f"{_text_of(value)} is not a number")
                else:
                    w.set_text(str(value))
            elif k == "bool":
                w = cast(QCheckBox, w)
                w.setTristate(value is None)
                w.setCheckState(Qt.CheckState.PartiallyChecked if value is None else
                                Qt.CheckState.Checked if value else Qt.CheckState.Unchecked)
            elif k in ("datetime", "date"):
                w = cast(DateBox, w)
                w.setText("" if value is None else datetime_text(value) if k == "datetime"
                          else date_text(value))
                w.setCursorPosition(0)
            elif k == "combo":
                w = cast(QComboBox, w)
                i = w.findData(value) if value is not None else 0
                if i < 0 and t == "ref":  # a reference to a record not in the list (yet)
                    w.addItem(ref_label(sat, self.field.ref, str(value)), value)
                    i = w.count() - 1
                elif i < 0:  # a value the schema no longer lists: shown, kept unless changed
                    w.addItem(f"{_text_of(value)} (not in the list)", value)
                    i = w.count() - 1
                w.setCurrentIndex(i)
            else:
                cast(QLineEdit, w).setText("" if value is None else
                          json.dumps(value) if t == "json" else str(value))
        finally:
            w.blockSignals(False)
        if self._choice_undo is not None:
            self._choice_undo.reset()  # as setText clears a text field's own undo

    def show_error(self, text: str) -> None:
        if text == self.error.text():  # every field's on each load: no call into Qt
            return
        self.error.setText(text)
        self.error.setVisible(bool(text))
        # the error is the field's to a screen reader too while shown (review a11y 16: it
        # was a label beside it, not tied to it)
        self.widget.setAccessibleDescription(
            text + (f" ({self._description})" if self._description else "") if text
            else self._description)


class _StateLabel(QLabel):
    """The form's state line: word-wrapped, and its height follows its text. A QLabel whose
    new text wraps to more lines keeps its size hint (the width-free one), so the layout
    kept the old height and a longer line was clipped to one (session 15: "Pending, saved
    here only: sync is stopped ..." showed a sliver of two lines; updateGeometry alone did
    not make the form's layout give it its height)."""

    kind = ""
    """The tone of its text (:func:`desktop.look.tone`: "error", "warn", "ok"; "": plain)."""

    def __init__(self) -> None:
        super().__init__()
        # a screen reader's user reaches it by Tab and reads it, as a sighted user reads it
        # (review a11y 16: it could not take focus); the text can be selected and copied
        self.setObjectName("state")
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.setAccessibleDescription("The record's state")

    def set_tone(self, kind: str) -> None:
        """Colour the text as ``kind`` says, readable on the palette (light or dark)."""
        self.kind = kind
        set_tone(self, kind)

    def setText(self, text: str) -> None:
        if text != self.text():
            super().setText(text)
            parent = self.parentWidget()
            lay = parent.layout() if parent is not None else None
            if lay is not None:  # its cached heights dropped, laid out again now
                lay.invalidate()
                lay.activate()


class RecordForm(QWidget):
    """Edits one record; emits ``save_requested`` with the changed fields.

    Signals:
        save_requested(dict): the fields the user changed: those whose editor shows another
            value than it showed when the record was loaded (every non-empty field for a new
            record); emitted only when every field sent is valid.
        dirty_changed(bool): whether the form differs from the record as loaded.
        typed(): the user changed a field (the window keeps the draft a moment later).
        field_reverted(str, dict, dict): Esc put back a field's value as loaded: its name,
            and the typing it replaced as a draft's ``fields`` and ``raw`` (the window makes
            it one undo step).
    """

    save_requested = Signal(dict)
    dirty_changed = Signal(bool)
    typed = Signal()
    field_reverted = Signal(str, dict, dict)

    def __init__(self, sat: SatelliteAPI, model: Model, parent: QWidget | None = None):
        super().__init__(parent)
        self._sat = sat
        self._model = model
        self._key = ""
        self._original: dict[str, Any] = {}
        self._base: Rev | None = None
        self._is_new = False
        self._dirty = False
        self._deleted_by: str | None = None  # the record was deleted under unsaved edits
        # ... or under the keyboard, nothing typed yet (merge review 16b): only typing since
        # is something to lose
        self._deleted_untyped = False
        self._said = ("", "")  # the state line of the record as loaded (text, tone)
        self._shown: RecordView | None = None  # the record it was said of
        self._stopped = ""  # why sync stopped for good (set_sync_stopped); "": it did not
        # a long name is cut with "…" (the whole in its tooltip), not clipped (session 14)
        self.title = ElidedLabel(min_chars=20)
        self.title.setFont(relative_font(self.title, _TITLE, bold=True))
        self.state = _StateLabel()
        self.state.setWordWrap(True)
        self.editors: dict[str, FieldEditor] = {}
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        taken = set(WINDOW_MNEMONICS)
        for f in model.fields:
            ed = FieldEditor(sat, f, self._edited,
                             lambda fields, raw, n=f.name: self.field_reverted.emit(
                                 n, fields, raw))
            self.editors[f.name] = ed
            box = QVBoxLayout()
            box.setSpacing(1)
            box.addWidget(ed.widget)
            box.addWidget(ed.raw)
            box.addWidget(ed.note)
            box.addWidget(ed.error)
            # Alt+letter to the field (a letter of its label the window's menus do not use)
            label = QLabel(mnemonic(f.title, taken) + (" *" if f.required else ""))
            label.setBuddy(ed.widget)
            form.addRow(label, box)
        self.save_button = QPushButton("Save")
        self.save_button.setObjectName("save")
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self.request_save)
        self.revert_button = QPushButton("Revert")
        self.revert_button.setToolTip(f"Back to the record as saved ({REVERT_KEY}); Esc in "
                                      "a field: that field only")
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
    def has_edits(self) -> bool:
        """Whether closing the form would lose something the user typed: unsaved changes of
        a record, a new record with a field filled in (an untouched new form loses nothing),
        the values of a record deleted under unsaved edits (one deleted under the keyboard
        with nothing typed: only typing since, as for a new record)."""
        if not self._dirty:
            return False
        if self._is_new and (self._deleted_by is None or self._deleted_untyped):
            return any(ed.touched for ed in self.editors.values())
        return True

    @property
    def deleted_by(self) -> str | None:
        """Who deleted the record while the form had unsaved edits (None: not deleted)."""
        return self._deleted_by

    @property
    def base(self) -> Rev | None:
        """The replica revision the record was loaded at: the base of the edit to save, so
        a change that reached the hub meanwhile becomes a conflict, not overwritten."""
        return self._base

    def clear(self) -> None:
        """Show no record."""
        self._key, self._is_new, self._original, self._base = "", False, {}, None
        self._shown = None
        self._end_deleted()
        for ed in self.editors.values():
            ed.load(self._sat, None)
            ed.show_error("")
        self.title.setText(f"No {self._model.title.lower()} selected")
        self.state.setText("")
        self.setEnabled(False)
        self._set_dirty(False)

    def load(self, rv: RecordView) -> None:
        """Show ``rv`` for editing (drops unsaved edits)."""
        self._key, self._is_new = rv.key, False
        self._end_deleted()
        self._base = self._sat.rev()  # status() read the queue: 1-2 ms a click
        self._original = dict(rv.fields or {})
        self._fill(self._original)
        d = self._original.get(self._model.display)
        self.title.setText(self._title_of(rv.key, d))
        self.title.setToolTip(f"{self._model.topic} {rv.key}")
        self._shown = rv
        self._said = self._state_line(rv)
        self._set_state(*self._said)
        self.setEnabled(True)

    def set_sync_stopped(self, why: str) -> None:
        """Sync stopped for good (``why``, e.g. "the hub has another schema"; ``""``: it
        did not): a pending record's state line says its edit will not reach the hub from
        this data directory (session 15: "waiting for the hub to accept it")."""
        if why == self._stopped:
            return
        self._stopped = why
        if self._shown is not None and self._key == self._shown.key and not self._is_new:
            self._said = self._state_line(self._shown)
            if not self._dirty:
                self._set_state(*self._said)

    def _state_line(self, rv: RecordView) -> tuple[str, str]:
        """:meth:`_state_of`, and for a synced record a change of which the hub accepted,
        then lost (its file rolled back: ``Satellite.lost_keys``; session 15), that."""
        said = self._state_of(rv)
        if said[0].startswith("Synced") and rv.key in self._sat.lost_keys(self._model.topic):
            return ("⚠ Lost by the hub: it accepted the change of this record, then lost it "
                    "(its file was rolled back); it is kept only here. Use a new data "
                    "directory for the hub and `outpost carry DIR --data NEWDIR --accepted` "
                    "to send it again.", "error")
        if said[0].startswith("Synced") and rv.key in self._sat.maybe_lost_keys(
                self._model.topic):
            # session 16: the marks are a lower bound, and the hub may lack this record's
            # accepted change too (it is after the point the hub is known to hold)
            return ("⚠ Maybe lost by the hub: it lost changes it accepted from here (its "
                    "file was rolled back) and which ones is not fully known yet; sync "
                    "again to find out. `outpost carry DIR --data NEWDIR --accepted` keeps "
                    "every one.", "error")
        return said

    def _state_of(self, rv: RecordView) -> tuple[str, str]:
        """The state line of the record ``rv`` (text, :func:`~desktop.look.tone` kind): in
        conflict, pending (sync stopped for good: said) or synced."""
        if rv.is_conflict:
            return ("⚠ In conflict: the hub rejected a change; open Conflicts.",
                    "error")
        if rv.applying:
            return ("Pending: an unsynced edit of it is being applied; the fields show the "
                    "saved value until it is (it cannot be saved before).", "warn")
        if rv.is_pending and self._stopped == BAD_HUB_VALUE:
            return (f"Pending, saved here only: sync is stopped ({BAD_HUB_VALUE}), so it "
                    "waits here until the hub's data is fixed; see the sync problem "
                    "(Ctrl+Shift+E) for what to do.", "error")
        if rv.is_pending and self._stopped:
            return (f"Pending, saved here only: sync is stopped ({self._stopped}), so it "
                    "does not reach the hub from this data directory; see the sync problem "
                    "(Ctrl+Shift+E) for what to do.", "error")
        if rv.is_pending:
            return ("Pending: saved here, waiting for the hub to accept it.",
                    "warn")
        return "Synced with the hub.", "ok"

    def title_of(self, key: str, fields: dict[str, Any]) -> str:
        """The title the form gives the record ``key`` with ``fields`` when it shows it."""
        return self._title_of(key, fields.get(self._model.display))

    def _title_of(self, key: str, display: Any) -> str:
        """The title of a record: an int-keyed topic's names its key (the number the table's
        Key column, ``outpost show`` and Keep both use), e.g. "Plots 604: North corner";
        a UUID key is named only when there is no display value (then in the tooltip)."""
        shown = display not in (None, "")
        if self._model.key == "int":
            return f"{self._model.title} {key}" + (f": {display}" if shown else "")
        return f"{self._model.title}: {display if shown else key}"

    def start_new(self, key: str) -> None:
        """Show an empty form (with defaults) for a new record with ``key``."""
        self._key, self._is_new = key, True
        self._end_deleted()
        self._base = self._sat.rev()  # status() read the queue: 1-2 ms a click
        self._original = {}
        self._fill(self._new_values())
        # the topic's label as it is ("Species": no singular to guess from a plural)
        self.title.setText(f"New record in {self._model.title}"
                           + (f", key {key}" if self._model.key == "int" else ""))
        self.title.setToolTip(f"{self._model.topic} {key}")
        self.state.setText("Fill in the fields and save (Ctrl+S).")
        self.state.set_tone("")
        self.setEnabled(True)
        self._set_dirty(True)

    def set_base(self, base: Rev) -> None:
        """Save on ``base`` (a draft kept from an earlier run: the revision it was loaded
        at, so a change made since is a conflict, not overwritten)."""
        self._base = base

    def set_new_key(self, key: str) -> None:
        """Give the new record being filled in another key (the one offered was taken)."""
        if self._is_new:
            self._key = key

    def set_value(self, name: str, value: Any) -> None:
        """Set one editor's value as if the user typed it."""
        self.editors[name].set(self._sat, value)
        self._edited()

    def values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(value per field, problem per field) of what the form shows. A field the user did
        not change is not checked (it is not sent: a stored value the schema no longer
        allows does not block saving the others)."""
        vals: dict[str, Any] = {}
        errs: dict[str, str] = {}
        for name, ed in self.editors.items():
            try:
                v = ed.get()
            except _Invalid as exc:
                errs[name] = str(exc)
                continue
            if self._is_new or ed.touched:
                problem = ed.field.check_value(v)
                if problem is not None:
                    errs[name] = f"expected {problem}"
            vals[name] = v
        return vals, errs

    def changes(self) -> dict[str, Any]:
        """The fields the user changed (non-empty fields when new): an editor that shows
        what it showed when the record was loaded is left out, whatever it can show of the
        stored value; one changed back to the same value too."""
        vals, _ = self.values()
        if self._is_new:
            return {k: v for k, v in vals.items() if v is not None}
        return {k: v for k, v in vals.items()
                if self.editors[k].touched and not same(v, self._original.get(k))}

    def invalid_texts(self) -> dict[str, str]:
        """The text of each editor the user typed something not valid yet into ("46.1x" in
        a number field): :meth:`changes` cannot give it as a value, a draft keeps it as
        typed (review 10: SIGTERM's draft dropped it)."""
        out: dict[str, str] = {}
        for name, ed in self.editors.items():
            text = ed.raw_text()
            if text is not None:
                out[name] = text
        return out

    def set_text(self, name: str, text: str) -> None:
        """Put ``text`` in one editor as if the user typed it (valid or not)."""
        self.editors[name].set_raw_text(text)
        self._edited()

    def commit(self) -> None:
        """Take what the editors show as typed (a spin box or picker whose text was not
        interpreted yet: Ctrl+S pressed in it)."""
        for ed in self.editors.values():
            if isinstance(ed.widget, QAbstractSpinBox):
                ed.widget.interpretText()

    def validated_changes(self) -> dict[str, Any] | None:
        """The changed fields when every one is valid; None (the problems shown under the
        fields) when one is not."""
        self.commit()
        _, errs = self.values()
        for name, ed in self.editors.items():
            ed.show_error(errs.get(name, ""))
        return None if errs else self.changes()

    def request_save(self) -> None:
        """Validate and, when valid, emit ``save_requested`` with the changed fields."""
        ch = self.validated_changes()
        if ch is not None and (ch or self._is_new):
            self.save_requested.emit(ch)

    def _set_state(self, text: str, kind: str) -> None:
        """The state line says ``text`` in the tone ``kind``."""
        self.state.setText(text)
        self.state.set_tone(kind)

    def show_errors(self, message: str) -> None:
        """Show a publish error under the field it names (or in the state line)."""
        for name, ed in self.editors.items():
            if f"'{name}'" in message:
                ed.show_error(message)
                return
        self.state.setText(message)
        self.state.set_tone("error")

    def mark_deleted(self, by: str) -> None:
        """The record was deleted (by ``by``, on the hub) while the form had unsaved edits:
        keep every value shown; Save re-creates the record with them (the same key, every
        field), Discard drops them."""
        if self._deleted_by is not None or self._is_new or not self._key:
            return
        self._deleted_by = by
        # kept under the keyboard with nothing typed (merge review 16b): opening another
        # record or closing asks nothing (Save, the question's default, would re-create it)
        self._deleted_untyped = not self._dirty
        self._is_new = True  # a save sends every field, as a new record
        # re-creating is the user's decision, on what they see now: not a conflict
        self._base = self._sat.rev()
        self.title.setText(f"{self.title.text()} (deleted)")
        kept = ("It stays here while you work in it" if self._deleted_untyped
                else "Your unsaved changes are kept here")
        self.state.setText(f"⚠ This record was deleted by {by} on the hub. {kept}: "
                           "Re-create saves it again with these values, Discard drops them.")
        self.state.set_tone("error")
        self.save_button.setText("Re-create")
        self.revert_button.setText("Discard")
        self._set_dirty(True)

    def _end_deleted(self) -> None:
        if self._deleted_by is not None:
            self._deleted_by = None
            self._deleted_untyped = False
            self.save_button.setText("Save")
            self.revert_button.setText("Revert")

    def note_changed(self, rv: RecordView | None) -> None:
        """A change notice for the record while the form has unsaved edits. When no field
        the user typed in changed, the other fields follow the record and the base moves to
        now (exact: every typed field holds the same value at both revisions, so a later
        edit of a field that followed is not a conflict). When a typed field changed, the
        form stays as loaded, on its base (saving it makes a conflict), and says which
        field. A change that leaves what the form loaded as it was says nothing."""
        now = dict(rv.fields or {}) if rv is not None else {}
        typed = set(self.changes()) | set(self.invalid_texts())
        moved = [n for n in self.editors if not same(now.get(n), self._original.get(n))]
        clash = [n for n in moved if n in typed]
        if not clash:
            for name in moved:  # not typed in: shows the record as it is now
                ed = self.editors[name]
                ed.load(self._sat, now.get(name))
                ed.show_error("")
                self._original[name] = now.get(name)
            if moved:
                self._base = self._sat.rev()
        if self._model.display not in typed and self._deleted_by is None:
            self.title.setText(self._title_of(self._key, self._original.get(
                self._model.display)))
        if clash:
            names = ", ".join(self.editors[n].field.title for n in clash)
            self.state.setText(f"⚠ Changed meanwhile: {names}. Your typing is kept; saving "
                               "a field that changed since you opened the record makes a "
                               "conflict.")
            self.state.set_tone("error")
            self._said = (self.state.text(), self.state.kind)
            self._shown = None  # said of the clash, not of a record's state
            return
        if rv is not None:  # what the record is now (synced, pending, in conflict), said
            self._shown = rv
            self._said = self._state_line(rv)  # once the form is back as loaded
        if self._dirty:
            self._set_state(UNSAVED, "warn")
        else:
            self._set_state(*self._said)

    def revert(self) -> None:
        if self._deleted_by is not None:  # Discard: the record is gone, so is the form
            self.clear()
        elif self._is_new:
            self._fill(self._new_values())
        else:
            self._fill(self._original)

    # -- internals -----------------------------------------------------------------------------

    def _new_values(self) -> dict[str, Any]:
        """A new record's starting values: the defaults, a check box without one unticked."""
        vals = self._model.defaults()
        for f in self._model.fields:
            if f.type == "bool" and vals.get(f.name) is None:
                vals[f.name] = False
        return vals

    def _fill(self, values: dict[str, Any]) -> None:
        for name, ed in self.editors.items():
            ed.load(self._sat, values.get(name))
            ed.show_error("")
        self._set_dirty(self._is_new)

    def _edited(self, *_args: Any) -> None:
        _, problems = self.values()
        for name, ed in self.editors.items():
            ed.show_error(problems.get(name, ""))
        # text not valid yet is typing too: it would be lost (and Save could not say why)
        self._set_dirty(self._is_new or bool(self.changes()) or bool(self.invalid_texts()))
        self.typed.emit()

    def _set_dirty(self, dirty: bool) -> None:
        self.save_button.setEnabled(dirty)
        self.revert_button.setEnabled(dirty)
        if dirty != self._dirty:
            self._dirty = dirty
            if self._key and not self._is_new:
                # an edited record is not "synced": say it has unsaved changes, and say
                # again what was said of it once it is back as loaded
                if dirty:
                    self._set_state(UNSAVED, "warn")
                else:
                    self._set_state(*self._said)
            self.dirty_changed.emit(dirty)

    def focus_first(self) -> None:
        first = next(iter(self.editors.values()), None)
        if first is not None:
            first.widget.setFocus(Qt.FocusReason.OtherFocusReason)
