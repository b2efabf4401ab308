"""Schemas: Project → schemas → models → fields, loaded from a TOML file.

A topic is a model's qualified name, ``schema.model`` (``field.site``). The file format is
documented in ``docs/schema.md``; in short::

    [project]
    name = "demo"

    [field.site]                 # schema "field", model "site"
    key = "str"                  # "str": UUIDv7 keys made on the client; "int": given integers
    display = "name"
    [field.site.fields]
    name = { type = "str", required = true }
    lat = "float"                # shorthand for { type = "float" }

Values travel and are stored as JSON values: ``date`` as ``YYYY-MM-DD``, ``datetime`` as
RFC 3339 text, ``ref`` as the target record's key. :meth:`Model.check` validates an action's
argument and raises :class:`~core.errors.ValidationError` naming topic, key, field, the bad
value and what was expected, with "did you mean" for misspelt names.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import hashlib
import json
import math
import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from core.errors import SchemaError, ValidationError
from core.ids import clean_key
from core.model import Action, Cmd
from core.printable import shown_key, unsafe

__all__ = [
    "FIELD_TYPES",
    "MAX_KEY",
    "MAX_NESTING",
    "Field",
    "Model",
    "Project",
    "did_you_mean",
    "load_project",
    "nesting",
    "parse_project",
    "read_bool",
    "too_deep",
]

FIELD_TYPES = ("str", "text", "int", "float", "bool", "date", "datetime", "enum", "ref", "json")
KEY_KINDS = ("str", "int")
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_RESERVED = frozenset({"key", "rev"})
MAX_INT = 2**63 - 1
MAX_EXACT_INT = 2**53
TRUE_WORDS = frozenset({"true", "yes", "1", "y", "on", "wahr", "vrai", "vero"})
FALSE_WORDS = frozenset({"false", "no", "0", "n", "off", "falsch", "faux", "falso"})
"""The texts a ``bool`` value is read from, any case (:func:`read_bool`): English words and
digits, and a spreadsheet's TRUE/FALSE as it saves them in German, French and Italian."""


def read_bool(text: str) -> bool:
    """A ``bool`` value from text (:data:`TRUE_WORDS`, :data:`FALSE_WORDS`, any case, spaces
    around): one reader for ``outpost pub`` and CSV import (session 13: CSV import alone read
    ``WAHR``/``FALSCH``, ``VRAI``/``FAUX``, ``VERO``/``FALSO``).

    Raises:
        ValueError: none of them.
    """
    low = text.strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    raise ValueError(text)


MAX_KEY = 200
"""The longest key of a record, in characters."""
MAX_NESTING = 100
"""The deepest nesting of lists and objects a stored value may have (a ``json`` field's value,
a transaction's ``extra``): ``[[1]]`` nests 2 levels. Every writer of JSON on the way (orjson,
which writes every reply: 254 levels; the stdlib's ``json`` in the ledger: about 1,000) takes
far more, so a value the hub stores can always be sent again (docs/protocol.md, evt.pub,
"Nesting")."""
NO_NUL = ("text without NUL characters (U+0000): remove them; a PostgreSQL ledger cannot store "
          "them")
"""What a str, text or ref value holding U+0000 is told (``json`` values may hold it: they
are stored as JSON text, where it is escaped)."""
"""The largest whole number a float field takes as an integer (a double holds it exactly)."""
_MIN_INT = -MAX_INT - 1
_int_text = re.compile(r"-?[0-9]+").fullmatch
"""Whether a key is an integer's text (compiled once: ``re.fullmatch`` looks its pattern up
in re's cache at every call)."""
_dumps = orjson.dumps
_NEW, _MOD, _DEL = Cmd.NEW, Cmd.MOD, Cmd.DEL  # module constants: Enum class lookups are slow
_CMDS = (_NEW, _MOD, _DEL)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``": did you mean 'x'?"`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f": did you mean {close[0]!r}?" if close else ""


def nesting(value: Any, stop: int = MAX_NESTING + 1) -> int:
    """How many levels of lists and objects ``value`` nests (a scalar: 0, ``{"a": [1]}``: 2),
    counted up to ``stop`` (a deeper value gives ``stop``). One pass over the containers, level
    by level: no recursion, so any depth is safe to measure."""
    level: list[Any] = [value]
    depth = 0
    while level and depth < stop:
        inner: list[Any] = []
        add = inner.append
        for c in level:
            t = type(c)
            if t is dict:
                c = c.values()
            elif t is not list:
                continue
            for x in c:
                if type(x) is dict or type(x) is list:
                    add(x)
        if depth == 0 and type(value) is not dict and type(value) is not list:
            return 0
        depth += 1
        level = inner
    return depth


_DEEP = (f"JSON nested at most {MAX_NESTING} levels deep (lists and objects; this value "
         "nests more): flatten it")
"""What a value nesting more than :data:`MAX_NESTING` levels is expected to be."""


def too_deep(value: Any) -> str | None:
    """:data:`_DEEP` for a value nesting more than :data:`MAX_NESTING` levels, ``None`` for
    one that fits (the caller names the field)."""
    return _DEEP if nesting(value) > MAX_NESTING else None


def _short(value: Any) -> str:
    if (type(value) is dict or type(value) is list) and nesting(value, 6) > 5:
        # a deep value's repr is long and, past about 1,000 levels, raises RecursionError
        kind = "a list" if type(value) is list else "an object"
        n = nesting(value)
        return f"{kind} nested {'more than ' if n > MAX_NESTING else ''}" \
               f"{min(n, MAX_NESTING)} levels deep"
    if type(value) is float and value.is_integer() and abs(value) >= 2**63:
        # a JSON integer past 64 bits, which orjson reads as a float: "got 1e+23" read as if
        # a float had been sent; its digits are lost (the nearest double's are not them)
        return f"an integer past 64 bits (about {value!r})"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a model.

    Attributes:
        name: the field name (``[a-z][a-z0-9_]*``).
        type: one of :data:`FIELD_TYPES`.
        required: a ``new`` must give a non-null value and a ``mod`` cannot clear it.
        default: the value a new record gets when none is given (``None``: no default).
        values: the allowed values of an ``enum``.
        ref: the topic a ``ref`` points at.
        label: a human name for forms and headers.
    """

    name: str
    type: str
    required: bool = False
    default: Any = None
    values: tuple[str, ...] = ()
    ref: str = ""
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def check_value(self, value: Any) -> str | None:
        """Return why ``value`` does not fit this field, or ``None`` when it fits.

        ``None`` (JSON null) fits every optional field.
        """
        if value is None:
            return "a value (the field is required)" if self.required else None
        t = self.type
        if t in ("str", "text"):
            if not isinstance(value, str):
                return "a string"
            if "\x00" in value:
                return NO_NUL
            if t == "str" and ("\n" in value or "\r" in value):
                return "a single line of text (use a text field for several lines)"
            return None
        if t == "int":
            if isinstance(value, float) and value.is_integer() and abs(value) >= 2**63:
                return "an integer within 64 bits"  # a JSON integer past 64 bits: a float
            if isinstance(value, bool) or not isinstance(value, int):
                return "an integer"
            if not -MAX_INT - 1 <= value <= MAX_INT:
                return "an integer within 64 bits"
            return None
        if t == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return "a number"
            if isinstance(value, float):
                if not math.isfinite(value):
                    return "a finite number"
            elif not -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
                # a double holds integers exactly only up to 2**53: beyond, the stored state
                # would differ from the event (or not fit at all: 10**400)
                return ("a number a float holds exactly (whole numbers up to ±2**53; write a "
                        "larger one with a decimal point, e.g. 1.5e20)")
            return None
        if t == "bool":
            return None if isinstance(value, bool) else "true or false"
        if t == "date":
            if not isinstance(value, str):
                return "a date as 'YYYY-MM-DD'"
            try:
                _dt.date.fromisoformat(value)
            except ValueError:
                return "a date as 'YYYY-MM-DD'"
            return None if len(value) == 10 else "a date as 'YYYY-MM-DD'"
        if t == "datetime":
            from core.revision import parse_rev

            if not isinstance(value, str):
                return "a date and time as RFC 3339, e.g. '2026-05-01T09:30:00Z'"
            try:
                parse_rev(value)
            except ValueError:
                return "a date and time as RFC 3339, e.g. '2026-05-01T09:30:00Z'"
            return None
        if t == "enum":
            if value not in self.values:
                hint = did_you_mean(str(value), self.values)
                return f"one of {', '.join(self.values)}{hint}"
            return None
        if t == "ref":
            if isinstance(value, bool) or not isinstance(value, str | int):
                return f"the key of a {self.ref} record"
            if isinstance(value, str) and not value:
                return f"the key of a {self.ref} record (not empty)"
            if isinstance(value, str) and "\x00" in value:
                return f"the key of a {self.ref} record ({NO_NUL})"
            return None
        # json: anything JSON can carry, nested at most MAX_NESTING levels
        return too_deep(value)

    def parse_text(self, text: str, exists: Callable[[str], bool] | None = None) -> Any:
        """Convert text (command line ``field=value``, a CSV cell) to this field's value.

        Empty text means null; a ``ref``'s text loses the spaces and invisible characters
        around it first (:func:`core.ids.clean_key`), unless ``exists(text)`` says a record
        has that very key (one made before keys were cleaned: " k1" is not k1 then).
        Raises ``ValueError`` naming what is expected.
        """
        t = self.type
        if t == "ref":
            # a key typed or pasted by the user, as a record's own key: " k1\u200b" is k1
            cleaned = clean_key(text)
            if cleaned != text and not (exists is not None and exists(text)):
                text = cleaned
        if text == "":
            return None
        try:
            if t == "int":
                return int(text)
            if t == "float":
                return float(text)
            if t == "bool":
                return read_bool(text)
            if t == "json":
                value = json.loads(text)
                if nesting(value) > MAX_NESTING:
                    raise _Said(f"not {_DEEP}")
                return value
            if t == "datetime":
                return _datetime_value(text)
            if t == "date":
                return _date_value(text)
        except _Said as exc:
            raise ValueError(f"field {self.name!r}: {_short(text)} is {exc}") from None
        except RecursionError:  # the stdlib's json, past about 1,000 levels
            raise ValueError(f"field {self.name!r}: {_short(text)} is not {_DEEP}") from None
        except ValueError:
            raise ValueError(
                f"field {self.name!r}: {text!r} is not {self.check_value(text) or 'valid JSON'}"
            ) from None
        return text


class _Said(ValueError):
    """A ValueError whose message says what was expected (``parse_text`` adds the field)."""


def _datetime_value(text: str) -> str:
    """A ``datetime`` field's value from text: RFC 3339 as written, else a date and time as
    the app writes and shows it (``2026-11-27 10:30``, ``2026-11-27 10:30:00.000 UTC``, with
    an offset ``+02:00``) in RFC 3339 UTC (merge review 11: a CSV cell or ``outpost pub``
    refused what the app showed). :func:`core.revision.read_datetime` reads both."""
    from core.revision import format_rev, parse_rev, read_datetime

    try:
        parse_rev(text)
        return text
    except ValueError:
        pass
    try:
        return format_rev(read_datetime(text))
    except ValueError as exc:
        raise _Said(str(exc)) from None


def _date_value(text: str) -> str:
    """A ``date`` field's value from text, as the app's date box reads it
    (:func:`core.revision.read_date`: ``2026-3-13`` is ``2026-03-13``; user review 12, a CSV
    cell or ``outpost pub`` refused what the app took)."""
    from core.revision import read_date

    try:
        return read_date(text)
    except ValueError as exc:
        raise _Said(str(exc)) from None


def _not_none(value: Any) -> bool:
    return value is not None


_SHORT = 2 * (MAX_NESTING + 1)
"""The fewest bytes of JSON text nesting more than :data:`MAX_NESTING` levels (each level
opens and closes a bracket): a shorter text cannot."""


def _shallow(v: Any) -> bool:
    """A ``json`` field's quick test: a scalar, or a list or object within the nesting limit.

    A list or object is written by orjson (C): a text shorter than :data:`_SHORT` cannot
    nest deeper (the common case: no bracket counted, session 13: ~2,100 instructions less
    per value than counting them); else its brackets are counted, and one with at most
    :data:`MAX_NESTING` of them cannot either; else it is walked. False (not sure):
    ``check_value`` decides."""
    if type(v) is dict or type(v) is list:
        try:
            text = _dumps(v)
        except TypeError:  # orjson.JSONEncodeError: past 254 levels, or not JSON
            return False
        if len(text) < _SHORT or text.count(b"[") + text.count(b"{") <= MAX_NESTING:
            return True
        return nesting(v) <= MAX_NESTING
    return v is not None


def _reject(_value: Any) -> bool:
    return False


def _quick_check(f: Field) -> Callable[[Any], bool]:
    """A fast test for one field: True only for values :meth:`Field.check_value` accepts.

    It looks at the exact type of the common values only (a ``str`` without line breaks for
    ``str``, a finite ``float`` or an ``int`` in range for ``float``...); False means "not
    sure", and the caller asks ``check_value``, which also words the error. Publishing
    validates every value of every action, so this is on the hot path.
    """
    t = f.type
    if t == "str":
        return lambda v: type(v) is str and "\n" not in v and "\r" not in v and "\x00" not in v
    if t == "text":
        return lambda v: type(v) is str and "\x00" not in v
    if t == "float":
        isfinite = math.isfinite
        return lambda v: type(v) is float and isfinite(v)
    if t == "int":
        lo, hi = -MAX_INT - 1, MAX_INT
        return lambda v: type(v) is int and lo <= v <= hi
    if t == "bool":
        return lambda v: type(v) is bool
    if t == "enum":
        allowed = frozenset(f.values)
        return lambda v: type(v) is str and v in allowed
    if t == "ref":
        return lambda v: type(v) is str and v != "" and "\x00" not in v
    if t == "json":
        return _shallow
    return _reject  # date, datetime: check_value parses them


_STORED_TYPE: dict[str, type] = {"str": str, "text": str, "enum": str, "date": str,
                                 "datetime": str, "bool": bool, "float": float}
"""Field types whose stored column takes any value of this exact Python type (a string's
line breaks or an enum outside its values do not break a replica's reads; an ``int``'s
range does: ints go through the quick test)."""


@dataclass(frozen=True, slots=True)
class Model:
    """A model: its topic, key kind, display field and fields in order."""

    schema: str
    name: str
    fields: tuple[Field, ...]
    key: str = "str"
    display: str = ""
    label: str = ""
    _by_name: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)
    # per field, a quick test that accepts the common valid values (see _quick_check); a
    # value it does not accept goes through Field.check_value, which decides
    _quick: dict[str, Callable[[Any], bool]] = field(default_factory=dict, compare=False,
                                                     repr=False)
    # required fields without a default: a ``new`` must give them
    _needed: list[str] = field(default_factory=list, compare=False, repr=False)
    # per field, the Python type its stored values usually have, when a value of that exact
    # type cannot break the replica (check_stored_types); absent: ask the quick test
    _stored_type: dict[str, type] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({f.name: f for f in self.fields})
        self._quick.update({f.name: _quick_check(f) for f in self.fields})
        self._stored_type.update({f.name: _STORED_TYPE[f.type] for f in self.fields
                                  if f.type in _STORED_TYPE})
        self._needed.extend(f.name for f in self.fields if f.required and f.default is None)

    @property
    def topic(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def field(self, name: str) -> Field | None:
        return self._by_name.get(name)

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def full(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """A record's fields in schema order, ``None`` for every field not in ``fields``."""
        return {f.name: fields.get(f.name) for f in self.fields}

    def defaults(self) -> dict[str, Any]:
        """The default values a new record gets."""
        return {f.name: f.default for f in self.fields if f.default is not None}

    def canonical_key(self, key: str) -> str:
        """``key`` in this model's canonical form: for integer keys the integer's own text
        ("002" and "+2" are "2", "-0" is "0"), for any other key (and a text that is not an
        integer, left for :meth:`check_key` to refuse) ``key`` itself. Keys are text on the
        wire, so "002" and "2" would be two records: typed keys are made canonical before
        they become an action (``outpost pub``, ``import``), and a new record under a key
        that is not is refused (:meth:`check_key` with ``new``)."""
        if self.key != "int" or not key:
            return key
        if "0" < key[0] <= "9" and key.isdigit() and key.isascii():
            return key  # the common case: already canonical
        if re.fullmatch(r"[-+]?[0-9]+", key):
            return str(int(key))
        return key

    def check_key(self, key: str, new: bool = False) -> None:
        """Raise ValidationError when ``key`` is not a valid key of this model; with ``new``
        (the key of a new record) also when it is an integer key not in canonical form
        (:meth:`canonical_key`: "002" beside "2" would be a second record) or beyond 64 bits
        (daql's int keys are int64; the next key a satellite makes would pass it). A record
        made under such a key before it was refused stays readable and editable: its mod and
        del are not ``new``."""
        if not isinstance(key, str) or not key:
            raise ValidationError(f"{self.topic}: empty key: every record needs a key")
        if len(key) > MAX_KEY:
            raise ValidationError(
                f"{self.topic}: key {_short(key)} is longer than {MAX_KEY} characters")
        if "\x00" in key:
            raise ValidationError(f"{self.topic}: key {_short(key)} holds a NUL character "
                                  "(U+0000): remove it; a PostgreSQL ledger cannot store it")
        if new and not key.isprintable():  # C-level: only odd keys look at each character
            # refused (as in user names, hubserver.auth.check_name): control characters,
            # line and paragraph separators, bidirectional overrides (session 15: a key
            # "\x1b]0;PWNED\x07" set the title of the terminal running `outpost show`, one
            # with a newline and tabs forged a line of its output). Keys made before stay
            # readable and editable (mod and del are not new): text output escapes them
            bad = next((ch for ch in key if unsafe(ch)), None)
            if bad is not None:
                raise ValidationError(
                    f"{self.topic}: key \"{shown_key(key)}\" holds the control character "
                    f"U+{ord(bad):04X} ({unicodedata.name(bad, 'unnamed')}): remove it (a "
                    "key is printed on one line, in terminals and tab-separated output; "
                    "letters of any script, digits, spaces, punctuation and emoji are fine)")
        if self.key == "int":
            if not _int_text(key):
                raise ValidationError(
                    f"{self.topic}: key {key!r} is not an integer; this model has integer keys"
                )
            if not new:
                return
            v = int(key)
            # 18 characters or fewer are within 64 bits (|v| < 10**18 < 2**63): compared
            # only when longer (session 13: the bound cost every new int key ~700
            # instructions)
            if len(key) > 18 and not _MIN_INT <= v <= MAX_INT:
                raise ValidationError(
                    f"{self.topic}: key {_short(key)} is beyond 64 bits; this model's integer "
                    f"keys are from {-MAX_INT - 1} to {MAX_INT}")
            if (canon := str(v)) != key:
                raise ValidationError(
                    f"{self.topic}: key {key!r} is not in canonical form: write it as "
                    f"{canon!r} (integer keys have no leading zeros and no minus zero; "
                    f"{key!r} would be a record beside {canon!r})")

    def _where(self, cmd: Cmd, key: str) -> str:
        # built only when a message needs it: check_arg runs for every action published
        return f"{cmd} {self.topic} {key}"

    @property
    def stored_types(self) -> dict[str, type]:
        """Per field, the exact Python type of values :meth:`check_stored_types` takes at a
        dict look-up (read only)."""
        return self._stored_type

    def check_stored_types(self, arg: Mapping[str, Any]) -> str | None:
        """Why one of ``arg``'s values of known fields cannot be stored in this model's
        columns (``field 'lat' got 'north', expected a number``), or ``None``: the cheap
        check of the events of a hub whose schema matched (a hostile hub or a
        man-in-the-middle on ws:// sent ``"lat": "north"`` and every later read of the
        replica failed, session 15). A value of its field's usual exact type is taken at a
        dict look-up (the replay path, docs/benchmarks.md #5); only the others go through
        :meth:`Field.check_value`. Unknown fields are left to the replica, as before."""
        exact = self._stored_type
        for name, value in arg.items():
            if type(value) is exact.get(name) or value is None:
                continue
            ok = self._quick.get(name)
            if ok is None or ok(value):
                continue
            problem = self._by_name[name].check_value(value)
            if problem is not None and problem is not _DEEP:
                return f"field {name!r} got {_short(value)}, expected {problem}"
        return None

    def check_arg(self, cmd: Cmd, key: str, arg: Mapping[str, Any] | None,
                  stored: bool = False) -> None:
        """Validate an action's argument against this model's fields.

        ``stored``: the argument of an event already stored (a hub's events a satellite
        receives, a backup's restored under a new schema), which a hub before session 12 may
        have taken nested past :data:`MAX_NESTING` levels: that limit is for what is
        published (refusing it later would stop every satellite's sync); the rest holds.

        Raises:
            ValidationError: an unknown field, a value of the wrong type, a missing required
                field on ``new``, or an argument given to ``del``.
        """
        if cmd == _DEL:
            if arg:
                raise ValidationError(
                    f"{self._where(cmd, key)}: del takes no field values; leave arg out")
            return
        if arg is None:
            arg = {}
        if type(arg) is not dict and not isinstance(arg, Mapping):
            raise ValidationError(
                f"{self._where(cmd, key)}: arg must be an object of field values")
        if cmd == _MOD and not arg:
            raise ValidationError(f"{self._where(cmd, key)}: mod without changed fields")
        quick = self._quick
        for name, value in arg.items():
            ok = quick.get(name)
            if ok is not None and ok(value):
                continue  # the common case: a valid value of the exact type (see _quick_check)
            f = self._by_name.get(name)
            if f is None:
                # only a field that takes the value (session 15: 'observer', a str, was
                # "did you mean 'observed'?", a datetime field); none for a stored event (a
                # restore's history: its field name cannot be changed)
                hint = "" if stored else did_you_mean(
                    name, [n for n, g in self._by_name.items() if g.check_value(value) is None])
                raise ValidationError(
                    f"{self._where(cmd, key)}: unknown field {name!r} for {self.topic}{hint}")
            problem = f.check_value(value)
            if problem is not None and not (stored and problem is _DEEP):
                raise ValidationError(f"{self._where(cmd, key)}: field {name!r} got "
                                      f"{_short(value)}, expected {problem}")
        if cmd == _NEW:
            for name in self._needed:
                if arg.get(name) is None:
                    raise ValidationError(
                        f"{self._where(cmd, key)}: required field {name!r} is missing")


@dataclass(frozen=True, slots=True)
class Project:
    """A project: its name and every model, by topic, in file order."""

    name: str
    models: tuple[Model, ...]
    _by_topic: dict[str, Model] = field(default_factory=dict, compare=False, repr=False)
    definition: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    _memo: dict[str, str] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_topic.update({m.topic: m for m in self.models})

    @property
    def topics(self) -> list[str]:
        return [m.topic for m in self.models]

    def model(self, topic: str) -> Model:
        """The model of a topic.

        Raises:
            ValidationError: no model has that topic (with "did you mean").
        """
        m = self._by_topic.get(topic)
        if m is None:
            raise ValidationError(
                f"no model found for topic {topic!r}{did_you_mean(str(topic), self._by_topic)}"
            )
        return m

    def has(self, topic: str) -> bool:
        return topic in self._by_topic

    def check_action(self, act: Action) -> Model:
        """Validate an action against the schema (not against ledger state).

        Raises:
            ValidationError: unknown topic, empty or malformed key, unknown command, unknown
                field, wrong value type, missing required field.
        """
        m = self.model(act.top)
        m.check_key(act.key, act.cmd == _NEW)
        if act.cmd not in _CMDS:
            raise ValidationError(
                f"{act.top} {act.key}: unknown cmd {act.cmd!r}: expected new, mod or del"
            )
        m.check_arg(act.cmd, act.key, act.arg)
        return m

    @property
    def version(self) -> str:
        """A stable hash of the definition: the schema version (``Status.mig``). Computed
        once (a project does not change): every ``Satellite.status()`` reads it, and the
        JSON dump and hash took about a third of a status read."""
        v = self._memo.get("version")
        if v is None:
            canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
            v = self._memo["version"] = hashlib.sha256(canon.encode()).hexdigest()[:16]
        return v

    def to_dict(self) -> dict[str, Any]:
        """The project as a JSON-ready dict (what ``dom.project`` serves)."""
        out: dict[str, Any] = {"project": {"name": self.name}}
        for m in self.models:
            fields: dict[str, Any] = {}
            for f in m.fields:
                d: dict[str, Any] = {"type": f.type}
                if f.required:
                    d["required"] = True
                if f.default is not None:
                    d["default"] = f.default
                if f.values:
                    d["values"] = list(f.values)
                if f.ref:
                    d["ref"] = f.ref
                if f.label:
                    d["label"] = f.label
                fields[f.name] = d
            md: dict[str, Any] = {"key": m.key, "display": m.display, "fields": fields}
            if m.label:
                md["label"] = m.label
            out.setdefault(m.schema, {})[m.name] = md
        return out


# ---------------------------------------------------------------------------------------------
# loading


def _line_of(text: str, *path: str) -> int:
    """Best-effort line number of the last name of ``path`` in TOML ``text`` (0 if unknown)."""
    if not text:
        return 0
    lines = text.splitlines()
    start = 0
    found = False
    # find the table header of the model first, then the key inside it
    if len(path) >= 2:
        header = re.compile(
            r"^\s*\[\s*" + re.escape(path[0]) + r"\s*\.\s*" + re.escape(path[1]) + r"\b"
        )
        for i, line in enumerate(lines):
            if header.match(line):
                start = i
                found = True
                break
    name = path[-1]
    pat = re.compile(r"^\s*\"?" + re.escape(name) + r"\"?\s*=|\[[^\]]*\b" + re.escape(name) + r"\]")
    for i in range(start, len(lines)):
        if pat.search(lines[i]):
            return i + 1
    return start + 1 if found else 0


class _Loader:
    def __init__(self, source: str, text: str):
        self.source = source
        self.text = text

    def fail(self, msg: str, *path: str) -> SchemaError:
        line = _line_of(self.text, *path)
        where = f"{self.source}:{line}" if line else self.source
        return SchemaError(f"{where}: {'.'.join(path)}: {msg}")

    def project(self, data: Mapping[str, Any]) -> Project:
        proj = data.get("project", {})
        if not isinstance(proj, Mapping):
            raise self.fail("must be a table with a name", "project")
        name = proj.get("name", "outpost")
        if not isinstance(name, str) or not name:
            raise self.fail("name must be a non-empty string", "project", "name")
        models: list[Model] = []
        for sname, sdef in data.items():
            if sname == "project":
                continue
            if not isinstance(sdef, Mapping):
                raise self.fail(
                    "expected a schema table such as [field.site]; top-level keys other than "
                    "[project] name schemas", sname)
            if not _NAME.match(sname):
                raise self.fail("schema names use lower case letters, digits and _", sname)
            for mname, mdef in sdef.items():
                models.append(self.model(sname, mname, mdef))
        if not models:
            raise SchemaError(f"{self.source}: no models defined; add a table such as [field.site]")
        topics = {m.topic for m in models}
        for m in models:
            for f in m.fields:
                if f.type == "ref" and f.ref not in topics:
                    raise self.fail(
                        f"ref {f.ref!r} is not a model of this project"
                        f"{did_you_mean(f.ref, topics)}",
                        m.schema, m.name, "fields", f.name)
        return Project(name=name, models=tuple(models), definition=dict(data))

    def model(self, sname: str, mname: str, mdef: Any) -> Model:
        path = (sname, mname)
        if not isinstance(mdef, Mapping):
            raise self.fail("expected a model table with fields", *path)
        if not _NAME.match(mname):
            raise self.fail("model names use lower case letters, digits and _", *path)
        allowed = {"key", "display", "label", "fields"}
        for k in mdef:
            if k not in allowed:
                raise self.fail(f"unknown model setting{did_you_mean(k, allowed)}", *path, k)
        key = mdef.get("key", "str")
        if key not in KEY_KINDS:
            raise self.fail(f"key must be 'str' or 'int', got {key!r}", *path, "key")
        fdefs = mdef.get("fields")
        if not isinstance(fdefs, Mapping) or not fdefs:
            raise self.fail("a model needs a [fields] table with at least one field",
                            *path, "fields")
        fields = tuple(self.field(sname, mname, n, d) for n, d in fdefs.items())
        names = [f.name for f in fields]
        display = mdef.get("display", "")
        if not isinstance(display, str):
            raise self.fail(f"display must be the name of a field, e.g. display = "
                            f"{names[0]!r}", *path, "display")
        if display == "":
            display = next((f.name for f in fields if f.type in ("str", "text")), names[0])
        if display not in names:
            hint = did_you_mean(display, names)
            raise self.fail(f"display field {display!r} is not a field{hint}", *path, "display")
        label = mdef.get("label", "")
        if not isinstance(label, str):
            raise self.fail("label must be a string", *path, "label")
        return Model(schema=sname, name=mname, fields=fields, key=key, display=display,
                     label=label)

    def field(self, sname: str, mname: str, name: str, fdef: Any) -> Field:
        path = (sname, mname, "fields", name)
        if not _NAME.match(name):
            raise self.fail("field names use lower case letters, digits and _", *path)
        if name in _RESERVED:
            raise self.fail(f"{name!r} is reserved; choose another field name", *path)
        if isinstance(fdef, str):
            fdef = {"type": fdef}
        if not isinstance(fdef, Mapping):
            raise self.fail("expected a type name or a table such as { type = \"str\" }", *path)
        allowed = {"type", "required", "default", "values", "ref", "label"}
        for k in fdef:
            if k not in allowed:
                raise self.fail(f"unknown field setting {k!r}{did_you_mean(k, allowed)}", *path)
        ftype = fdef.get("type")
        if ftype is None:
            raise self.fail(f"missing type: add type = \"str\" or another of "
                            f"{', '.join(FIELD_TYPES)}", *path)
        if ftype not in FIELD_TYPES:
            raise self.fail(
                f"unknown type {ftype!r}{did_you_mean(str(ftype), FIELD_TYPES)} "
                f"(types: {', '.join(FIELD_TYPES)})", *path)
        required = fdef.get("required", False)
        if not isinstance(required, bool):
            raise self.fail("required must be true or false", *path)
        values = fdef.get("values", ())
        if ftype == "enum":
            if (not isinstance(values, list) or not values
                    or not all(isinstance(v, str) and v for v in values)):
                raise self.fail("an enum needs values = [\"a\", \"b\", ...]", *path)
            if any("\x00" in v for v in values):
                raise self.fail("an enum value holds a NUL character (\\u0000): remove it",
                                *path)
        elif values:
            raise self.fail("values are only for enum fields", *path)
        ref = fdef.get("ref", "")
        if ftype == "ref":
            if not isinstance(ref, str) or not ref:
                raise self.fail("a ref needs ref = \"schema.model\"", *path)
            if "." not in ref:
                ref = f"{sname}.{ref}"
        elif ref:
            raise self.fail("ref is only for ref fields", *path)
        label = fdef.get("label", "")
        if isinstance(fdef.get("default"), _dt.date | _dt.datetime | _dt.time):
            raise self.fail("write date defaults as quoted text, e.g. \"2026-01-31\"", *path)
        f = Field(name=name, type=ftype, required=required, default=fdef.get("default"),
                  values=tuple(values), ref=ref, label=str(label))
        if f.default is not None:
            problem = f.check_value(f.default)
            if problem:
                raise self.fail(f"default {f.default!r} is not {problem}", *path)
        return f


def parse_project(data: Mapping[str, Any] | str, source: str = "<schema>") -> Project:
    """Build a project from TOML text or from an already parsed dict (e.g. ``dom.project``).

    Raises:
        SchemaError: naming the source, the line where known, the path and the fix.
    """
    text = ""
    if isinstance(data, str):
        text = data
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            # Python 3.11's TOMLDecodeError has no lineno attribute: read it from the message
            m = re.search(r"at line (\d+)", str(exc))
            where = f"{source}:{m[1]}" if m else source
            raise SchemaError(f"{where}: not valid TOML: {exc}") from exc
    return _Loader(source, text).project(data)


def load_project(path: str | Path) -> Project:
    """Load a project from a TOML schema file.

    Raises:
        SchemaError: the file cannot be read or defines a broken schema.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SchemaError(f"{p}: schema file not found; check the path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{p}: cannot read schema file: {exc}") from exc
    return parse_project(text, str(p))
