"""What a database driver's error means, told by its type and code only.

:func:`storage_kind` gives :attr:`core.errors.StorageError.kind` (``"full"``, ``"readonly"``,
``"locked"``, ``"unreachable"`` or ``""``) from SQLite's result code, PostgreSQL's SQLSTATE
(psycopg's errors without one: a lost connection) and an OSError's errno, never from words
of the error's text: that holds the database's URL, path or name, and a database named
``fullmoon`` was reported as a full disk, a PostgreSQL stopped under load ("cannot exit
pipeline mode while busy") as locked (operator review 11).
"""

from __future__ import annotations

import errno
import sqlite3
import sys

from sqlalchemy.exc import DBAPIError

from core.errors import StorageError

__all__ = ["sqlite_code", "storage_kind"]

_SQLITE_KINDS = {sqlite3.SQLITE_FULL: "full", sqlite3.SQLITE_READONLY: "readonly",
                 sqlite3.SQLITE_BUSY: "locked", sqlite3.SQLITE_LOCKED: "locked"}
_PG_KINDS = {"53100": "full", "25006": "readonly", "55P03": "locked", "55006": "locked",
             "57P01": "unreachable", "57P02": "unreachable", "57P03": "unreachable"}
_OS_KINDS = {errno.ENOSPC: "full", errno.EDQUOT: "full", errno.EROFS: "readonly"}


def storage_kind(exc: BaseException | None) -> str:
    """What a driver error means (:attr:`core.errors.StorageError.kind`), from its type and
    code only: SQLite's result code, PostgreSQL's SQLSTATE (class 08, a connection failure,
    and psycopg's errors without one, a lost connection: ``"unreachable"``), an OSError's
    errno. Never from words of its text: that holds the database's URL, path or name (a
    database named ``fullmoon`` was reported as a full disk)."""
    seen = 0
    while exc is not None and seen < 5:  # SQLAlchemy's wrapper, then the driver's error
        seen += 1
        if isinstance(exc, StorageError):
            return exc.kind
        if isinstance(exc, DBAPIError):
            if exc.connection_invalidated:
                return "unreachable"
            exc = exc.orig
            continue
        if isinstance(exc, sqlite3.Error):
            code = getattr(exc, "sqlite_errorcode", None)
            return "" if code is None else _SQLITE_KINDS.get(code & 0xFF, "")
        pg = sys.modules.get("psycopg")  # imported by a PostgreSQL ledger only
        if pg is not None and isinstance(exc, pg.Error):
            state = exc.sqlstate or ""
            if state.startswith("08") or (not state and isinstance(
                    exc, (pg.OperationalError, pg.InterfaceError))):
                return "unreachable"
            return _PG_KINDS.get(state, "")
        if isinstance(exc, OSError):
            return _OS_KINDS.get(exc.errno or 0, "")
        exc = exc.__cause__
    return ""


def sqlite_code(exc: BaseException) -> int:
    """The primary SQLite result code of ``exc`` (0: not an SQLite error)."""
    code = getattr(exc, "sqlite_errorcode", None) if isinstance(exc, sqlite3.Error) else None
    return 0 if code is None else int(code) & 0xFF
