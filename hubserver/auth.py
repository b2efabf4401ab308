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

import builtins
import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from core.errors import ConfigError, StorageError

__all__ = ["FIRST", "ROLES", "Token", "User", "Users", "check_name", "hash_token", "new_token",
           "parse_bearer"]

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


_TOKENS = """
CREATE TABLE IF NOT EXISTS hub_token (
    user TEXT NOT NULL,
    name TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    PRIMARY KEY (user, name)
)
"""
"""A user's further tokens, each named (one a device: ``user token add ann --name laptop2``),
so that one can be revoked alone (session 15: one token per user, and a lost laptop's could
only be revoked by cutting all of the user's devices). ``hub_user.token_sha256`` stays the
user's first token (named :data:`FIRST` in ``user token list``): a users file from before
has none of these, and an older Outpost reading a newer file ignores them (refuses them)."""

FIRST = "first"
"""The name ``user token list`` gives a user's first token (``user add``'s, in ``hub_user``)."""

_REVOKED = "revoked:"
"""The stored hash of a first token revoked (``user token revoke ann first``): never the
SHA-256 of a token (other length, not hex), unique by a random tail."""

_ALL = (f"SELECT name, role, token_sha256, '{FIRST}' FROM hub_user UNION ALL "
        "SELECT t.user, u.role, t.token_sha256, t.name FROM hub_token t "
        "JOIN hub_user u ON u.name = t.user")
"""Every token's (user, role, hash, token name): the user's role is its tokens' (one place to
change)."""


@dataclass(frozen=True, slots=True)
class Token:
    """One of a user's tokens, as ``user token list`` shows it (never the token itself)."""

    name: str
    created: float
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class User:
    """An authenticated user: the audit ``usr`` and whether it may publish."""

    name: str
    role: str
    token: str = field(default="", compare=False)
    """The name of the token it came with (``user token list``'s; never the token itself),
    for the hub's log; ``""`` when unknown. Not part of the user's identity."""


def hash_token(token: str) -> str:
    """The stored form of a token: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str, what: str = "user name") -> None:
    """Raise ConfigError when ``name`` cannot be a user name (the audit ``usr``): empty, over
    100 characters, or holding a control or format character (a tab or newline broke the
    tab-separated ``user list`` and log lines; a NUL cannot be stored by PostgreSQL).
    ``what``: the name's kind in the message (a token's name has the same rules)."""
    if not name or not name.strip() or len(name) > 100:
        raise ConfigError(f"{what} {name!r}: expected 1 to 100 characters")
    bad = next((ch for ch in name if unicodedata.category(ch) in _CONTROL), None)
    if bad is not None:
        raise ConfigError(f"{what} {name!r} holds the control character "
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
                self._db.execute(_TOKENS)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open the users file {self.path}: {exc}; check the "
                               "path and its permissions") from exc
        self._ident = self._stat()
        self._gone = False
        self._cache: list[tuple[str, str, str, str]] | None = None
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

    def add_token(self, user: str, name: str) -> str:
        """Give ``user`` another token, named ``name`` (a device: "laptop2"); returns it,
        shown only this once. The audit records the user, whichever token it came with.

        Raises:
            ConfigError: no such user, a bad name, :data:`FIRST`, or a name the user's
                tokens already have.
        """
        check_name(name, "token name")
        if name == FIRST:
            raise ConfigError(f"token name {FIRST!r} is the user's first token (`user add "
                              "--replace` replaces it): choose another --name")
        if self._role(user) is None:
            raise ConfigError(f"no user named {user!r} in {self.path}: add the user first "
                              "(`outpost-hub user add NAME`); nothing was changed")
        token = new_token()
        try:
            with self._db:
                self._db.execute(
                    "INSERT INTO hub_token (user, name, token_sha256, created) VALUES (?,?,?,?)",
                    (user, name, hash_token(token), time.time()))
        except sqlite3.IntegrityError as exc:
            raise ConfigError(f"user {user!r} already has a token named {name!r}: revoke it "
                              f"first (`outpost-hub user token revoke {user} {name}`), or "
                              "choose another --name; nothing was changed") from exc
        except sqlite3.Error as exc:
            raise StorageError(f"cannot add a token to user {user!r} in {self.path}: "
                               f"{exc}") from exc
        self._cache = None
        return token

    def tokens(self, user: str) -> list[Token] | None:
        """The user's tokens, the first one (:data:`FIRST`) first, then by name; None when
        there is no such user."""
        row = self._db.execute("SELECT token_sha256, created FROM hub_user WHERE name = ?",
                               (user,)).fetchone()
        if row is None:
            return None
        rows = self._db.execute("SELECT name, created FROM hub_token WHERE user = ? "
                                "ORDER BY name", (user,)).fetchall()
        return [Token(FIRST, row[1], str(row[0]).startswith(_REVOKED)),
                *(Token(n, c) for n, c in rows)]

    def revoke_token(self, user: str, name: str) -> bool:
        """Revoke one of the user's tokens (the others keep working): it stops working, and
        the connections made with it are closed, within 2 s on every hub. The first token
        (:data:`FIRST`) is kept as revoked (the user stays, with its role); `user add
        --replace` gives a new one. False when the user has no token of that name."""
        try:
            with self._db:
                if name == FIRST:
                    cur = self._db.execute(
                        "UPDATE hub_user SET token_sha256 = ? WHERE name = ? AND "
                        "token_sha256 NOT LIKE 'revoked:%'",
                        (_REVOKED + secrets.token_hex(16), user))
                else:
                    cur = self._db.execute(
                        "DELETE FROM hub_token WHERE user = ? AND name = ?", (user, name))
        except sqlite3.Error as exc:
            raise StorageError(f"cannot revoke token {name!r} of user {user!r} in "
                               f"{self.path}: {exc}") from exc
        self._cache = None
        return cur.rowcount > 0

    def _role(self, user: str) -> str | None:
        row = self._db.execute("SELECT role FROM hub_user WHERE name = ?", (user,)).fetchone()
        return None if row is None else str(row[0])

    def remove(self, name: str) -> bool:
        """Remove a user (and every token of theirs); False when there was none of that
        name."""
        try:
            with self._db:
                self._db.execute("DELETE FROM hub_token WHERE user = ?", (name,))
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
            self._cache = self._read_all()
        digest = hash_token(token)
        found: User | None = None
        for name, role, stored, tname in self._cache:
            if hmac.compare_digest(digest, stored):
                found = User(name, role, tname)
        return found

    def _read_all(self) -> builtins.list[tuple[str, str, str, str]]:
        """Every token's (user, role, hash, token name); a file put at the path by an older
        Outpost (no ``hub_token``: not written to, it may be read-only) has only first
        tokens."""
        try:
            return self._db.execute(_ALL).fetchall()
        except sqlite3.OperationalError as exc:
            if "hub_token" not in str(exc):
                raise
            return self._db.execute(f"SELECT name, role, token_sha256, '{FIRST}' "
                                    "FROM hub_user").fetchall()

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
            self._cache = self._read_all()
        except sqlite3.Error:
            return False  # unreadable for now: keep what was known, check again later
        return True

    def holds(self, user: User, digest: str) -> bool:
        """True while ``user`` (same name and role) still has the token of SHA-256
        ``digest`` (as of the last :meth:`authenticate` or :meth:`changed`)."""
        return any(n == user.name and r == user.role and hmac.compare_digest(digest, d)
                   for n, r, d, _t in self._cache or ())

    def reload(self) -> None:
        """Forget cached users (after ``user add`` / ``user remove`` by another process)."""
        self._cache = None
