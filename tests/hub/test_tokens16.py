"""Named tokens' leftovers of session 15: ``user token list`` said "1 tokens"; the hub's log
named the user of a connection, not which of its tokens (a lost laptop's connections could
not be told from the others'); ``backup``'s users digest covered the first tokens only (a
token added or revoked since the backup went unseen by ``restore``). Real ``outpost-hub``
processes, a hub on 127.0.0.1 with real websockets, real users files."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from core.ledger import MemLedger
from core.schema import Project
from hubserver.auth import Users
from hubserver.server import Hub
from hubserver.usersmove import belongs, users_digest
from tests.hub.conftest import request
from tests.hub.test_tokens15 import _auth, _hub


async def test_token_list_counts_in_words(tmp_path: Path) -> None:
    path = tmp_path / "hub-users.db"
    Users(path).add("ann")
    one = await _hub("token", "list", "ann", "--users", str(path))
    assert one.returncode == 0, one.stderr
    assert f"1 token of user ann in {path}" in one.stderr, one.stderr
    assert (await _hub("token", "add", "ann", "--name", "laptop2", "--users",
                       str(path))).returncode == 0
    two = await _hub("token", "list", "ann", "--users", str(path))
    assert f"2 tokens of user ann in {path}" in two.stderr, two.stderr


async def test_the_log_names_the_token_of_a_connection_never_the_token(
        prod: Project, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="outpost.hub")
    path = tmp_path / "hub-users.db"
    users = Users(path)
    try:
        first = users.add("ann")
        second = users.add_token("ann", "laptop2")
        async with Hub(MemLedger(prod), users=users) as hub:
            for tok in (first, second):
                async with connect(hub.url, additional_headers=_auth(tok)) as ws:
                    assert "res" in await request(ws, "evt.stat")
        said = [r.getMessage() for r in caplog.records if " connected from " in r.getMessage()]
        assert len(said) == 2, said
        assert ": ann (writer, token first) connected from " in said[0], said
        assert ": ann (writer, token laptop2) connected from " in said[1], said
        text = caplog.text
        assert first not in text and second not in text  # never the tokens themselves
    finally:
        users.close()


def test_the_users_digest_covers_every_token(tmp_path: Path) -> None:
    path = tmp_path / "hub-users.db"
    users = Users(path)
    try:
        users.add("ann")
        users.add("bob", "reader")
        con = sqlite3.connect(path)
        rows = con.execute("SELECT name, role, token_sha256 FROM hub_user "
                           "ORDER BY name").fetchall()
        con.close()
        # first tokens only (every file before session 15): the digest backups recorded
        old = hashlib.sha256("\n".join("\t".join(map(str, r)) for r in rows).encode())
        assert users_digest(path) == old.hexdigest()
        before = users_digest(path)
        users.add_token("ann", "laptop2")
        added = users_digest(path)
        assert added != before  # before: the same, a token added since the backup unseen
        assert users.revoke_token("ann", "laptop2")
        assert users_digest(path) == before
        users.add_token("ann", "laptop2")  # another token under the same name
        assert users_digest(path) not in (before, added)
        # restore takes a users file at the recorded path as the backed-up one only when it
        # holds the tokens it held then
        assert not belongs(path, "", added)
        assert belongs(path, "", users_digest(path))
    finally:
        users.close()
