"""Hub users and their tokens, in a small SQLite file next to the hub database.

A token is 32 random bytes (URL-safe base64, never starting with ``-``); the file keeps only
its SHA-256, which is enough for a high-entropy secret (no salt or slow hash needed: nothing
to brute-force). Lookups hash the presented token and compare with
:func:`hmac.compare_digest` against every stored hash, so timing does not reveal how much of
a token matched. The token is shown once, by ``outpost-hub user add``; it cannot be
recovered, only replaced.

Clients send it in the opening handshake as ``Authorization: Bearer <token>`` (never in the
URL: URLs end up in logs).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from core.errors import ConfigError, StorageError

__all__ = ["ROLES", "User", "Users", "check_name", "hash_token", "new_token", "parse_bearer"]

ROLES = ("reader", "writer")

log = logging.getLogger("outpost.hub")

_CONTROL = frozenset({"Cc", "Cf", "Zl", "Zp"})
"""Unicode categories refused in user names: control and format characters, line and
paragraph separators (a name is printed on one line, tab-separated, and in logs)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hub_user (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('reader', 'writer')),
    token_sha256 TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class User:
    """An authenticated user: the audit ``usr`` and whether it may publish."""

    name: str
    role: str


def hash_token(token: str) -> str:
    """The stored form of a token: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> None:
    """Raise ConfigError when ``name`` cannot be a user name (the audit ``usr``): empty, over
    100 characters, or holding a control or format character (a tab or newline broke the
    tab-separated ``user list`` and log lines; a NUL cannot be stored by PostgreSQL)."""
    if not name or not name.strip() or len(name) > 100:
        raise ConfigError(f"user name {name!r}: expected 1 to 100 characters")
    bad = next((ch for ch in name if unicodedata.category(ch) in _CONTROL), None)
    if bad is not None:
        raise ConfigError(f"user name {name!r} holds the control character "
                          f"U+{ord(bad):04X}: use letters, digits, spaces and punctuation")


def new_token() -> str:
    """A new token: 32 random bytes, URL-safe base64, never starting with ``-`` (on a command
    line, ``--token -vYk…`` read as an option: argparse refused it)."""
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith("-"):
            return token


def parse_bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer T`` header, or ``None``."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class Users:
    """The users file.

    A hub follows the file by its path: when it is replaced by another file (``rsync``,
    Ansible's ``copy``, ``install``, ``mv new users.db``: a new inode), it is opened again;
    while the path names no file (deleted or moved away), every token is refused and every
    open connection is closed (:meth:`changed`): a revocation must take effect, even as the
    removal of the whole file.

    Args:
        path: the SQLite file.
        create: make the file when it does not exist (``user add``, ``serve``); else
            :class:`ConfigError` naming it (``user list``/``user remove`` create nothing).

    Raises:
        StorageError: the file cannot be opened or written.
        ConfigError: ``create`` is false and there is no file at ``path``.
    """

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.exists():
            raise ConfigError(f"no users file {self.path}, so no users to list or remove; "
                              "nothing was created: check --db (or --users): give the one "
                              "`outpost-hub serve` has (its ready line names its users file)")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._connect(create)
            with self._db:
                self._db.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open the users file {self.path}: {exc}; check the "
                               "path and its permissions") from exc
        self._ident = self._stat()
        self._gone = False
        self._cache: list[tuple[str, str, str]] | None = None
        self._mtime = 0
        self._version = -1

    def _connect(self, create: bool) -> sqlite3.Connection:
        mode = "rwc" if create else "rw"
        uri = f"file:{quote(str(self.path.resolve()))}?mode={mode}"
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    def _stat(self) -> tuple[int, int] | None:
        """The (device, inode) of the file at ``path`` now; ``None`` when there is none."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _follow(self) -> bool:
        """Open the file again when the path names another one than the open connection's;
        True when the path names no file (every token is then refused)."""
        ident = self._stat()
        if ident is None:
            if not self._gone:
                log.error("the users file %s is gone (deleted or moved away): every token "
                          "is refused and open connections are closed until a users file is "
                          "back at that path", self.path)
            self._gone = True
            return True
        if ident != self._ident:
            try:
                db = self._connect(create=False)
                db.execute("SELECT 1 FROM hub_user LIMIT 1").fetchall()
            except sqlite3.Error as exc:
                if not self._gone:
                    log.error("the users file %s was replaced by a file that cannot be read "
                              "(%s): every token is refused until it can be", self.path, exc)
                self._gone = True
                return True
            self._db.close()
            self._db, self._ident = db, ident
            self._version, self._cache, self._mtime = -1, None, 0
            log.info("the users file %s was replaced (a new file at that path): read again",
                     self.path)
        elif self._gone:
            self._version, self._cache = -1, None
        if self._gone:
            log.warning("the users file %s is back: tokens are checked against it again",
                        self.path)
        self._gone = False
        return False

    def close(self) -> None:
        self._db.close()

    def add(self, name: str, role: str = "writer") -> str:
        """Add a user (or replace its token); returns the new token, shown only this once.

        Raises:
            ConfigError: an empty name or an unknown role.
        """
        check_name(name)
        if role not in ROLES:
            raise ConfigError(f"role {role!r}: expected one of {', '.join(ROLES)}")
        token = new_token()
        try:
            with self._db:
                self._db.execute(
                    "INSERT INTO hub_user (name, role, token_sha256, created) VALUES (?,?,?,?) "
                    "ON CONFLICT(name) DO UPDATE SET role=excluded.role, "
                    "token_sha256=excluded.token_sha256",
                    (name, role, hash_token(token), time.time()))
        except sqlite3.Error as exc:
            raise StorageError(f"cannot add user {name!r} to {self.path}: {exc}") from exc
        self._cache = None
        return token

    def remove(self, name: str) -> bool:
        """Remove a user; False when there was none of that name."""
        try:
            with self._db:
                cur = self._db.execute("DELETE FROM hub_user WHERE name = ?", (name,))
        except sqlite3.Error as exc:
            raise StorageError(f"cannot remove user {name!r} from {self.path}: {exc}") from exc
        self._cache = None
        return cur.rowcount > 0

    def list(self) -> list[User]:
        """Every user, by name."""
        rows = self._db.execute("SELECT name, role FROM hub_user ORDER BY name").fetchall()
        return [User(n, r) for n, r in rows]

    def authenticate(self, token: str | None) -> User | None:
        """The user a token belongs to, or ``None`` (compared in constant time)."""
        if not token or self._follow():
            return None
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except OSError:
            mtime = 0
        if self._cache is None or mtime != self._mtime:
            # another process (``outpost-hub user add``) may have changed the file
            self._mtime = mtime
            self._cache = self._db.execute(
                "SELECT name, role, token_sha256 FROM hub_user").fetchall()
        digest = hash_token(token)
        found: User | None = None
        for name, role, stored in self._cache:
            if hmac.compare_digest(digest, stored):
                found = User(name, role)
        return found

    def changed(self) -> bool:
        """True when the users file changed since the last call (a commit by any process,
        e.g. ``outpost-hub user remove`` or another hub: SQLite's ``data_version``, one cheap
        query), and then the users are read again (:meth:`holds`). A file replaced at the
        path is opened again; a path with no file holds no users (all are revoked)."""
        if self._follow():
            if self._cache == []:
                return False
            self._cache = []
            return True
        try:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version == self._version and self._cache is not None:
                return False
            self._version = version
            self._cache = self._db.execute(
                "SELECT name, role, token_sha256 FROM hub_user").fetchall()
        except sqlite3.Error:
            return False  # unreadable for now: keep what was known, check again later
        return True

    def holds(self, user: User, digest: str) -> bool:
        """True while ``user`` (same name and role) still has the token of SHA-256
        ``digest`` (as of the last :meth:`authenticate` or :meth:`changed`)."""
        return any(n == user.name and r == user.role and hmac.compare_digest(digest, d)
                   for n, r, d in self._cache or ())

    def reload(self) -> None:
        """Forget cached users (after ``user add`` / ``user remove`` by another process)."""
        self._cache = None
