"""The token switch's leftovers of session 15 (merge review 15a): a new token waiting for
the hub to answer the edits sent with the old one (up to 30 s) was lost when the window
closed meanwhile, without a word; and when the hub refused the old token during the wait,
the switch went on at once (nobody can have those edits answered as the old user), and the
hub's "already applied with other actions" made the edits it had applied false conflicts.
Now the waiting token is kept for the next start (said on stderr), and the edits the hub had
applied are accepted. Real Qt widgets (offscreen), a real hub on 127.0.0.1 with real users,
real data directories."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from core.ledger.memory import MemLedger
from core.revision import ZERO_REV
from core.satellite.api import ReceiptState
from core.satellite.client import SyncClient
from core.satellite.config import DataDir
from core.schema import Project
from desktop.app import WindowSpec, close_window, open_satellite, use_token
from hubserver.auth import Users
from hubserver.server import Hub
from tests.desktop.test_launch14 import user_dirs  # noqa: F401
from tests.desktop.test_status import until
from tests.desktop.test_token_settle14 import N, _all_synced, _upload_held


async def test_a_new_token_waiting_at_close_is_kept_for_the_next_start(
        qtbot: Any, user_dirs: Path, tmp_path: Path, project: Project,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    users = Users(tmp_path / "users.db")
    ledger = MemLedger(project)
    try:
        async with Hub(ledger, port=0, users=users) as hub:
            w, release = await _upload_held(tmp_path, project, users, ledger, hub, qtbot)
            d = w.sat.data.path
            bob = users.add("bob")
            switch = asyncio.ensure_future(use_token(w, bob))
            try:
                await until(lambda: w.sync_handle.switching == bob, "the new token waiting")
                await close_window(w)  # File → Quit during the wait
                w.close()
                await asyncio.wait_for(switch, 10)  # ends with the window, not in 30 s
            finally:
                release.set()
            err = " ".join(capsys.readouterr().err.split())
            assert f"the new token is kept for {d} and used from the next start" in err, err
            assert DataDir(d).load_config().token == bob  # before: the old one, bob lost
            # the next start: the hub applied the batch in flight as alice's; sent again
            # with bob's token, its edits are accepted, not conflicts
            sat = await open_satellite(WindowSpec(d, hub.url, ""))
            try:
                assert sat.config.token == bob
                await SyncClient(sat, hub.url, bob, rnd=random.Random(0)).sync_once(60)
                st = sat.status()
                assert st.pending == 0 and st.conflicts == 0 and not st.last_error, st
                assert len(sat.receipts([ReceiptState.ACCEPTED])) == N
                assert len(ledger.events(ZERO_REV)) == N and ledger.count("field.site") == N
                users_of = {h.usr for h in sat.history("field.site", "k00000")}
                assert users_of == {"alice"}, users_of  # the first batch: alice's token
            finally:
                sat.close()
    finally:
        users.close()


async def test_old_token_refused_during_the_wait_accepts_what_the_hub_applied(
        qtbot: Any, user_dirs: Path, tmp_path: Path, project: Project) -> None:  # noqa: F811
    users = Users(tmp_path / "users.db")
    ledger = MemLedger(project)
    try:
        async with Hub(ledger, port=0, users=users, users_check=0.05) as hub:
            w, release = await _upload_held(tmp_path, project, users, ledger, hub, qtbot)
            bob = users.add("bob")
            switch = asyncio.ensure_future(use_token(w, bob))
            try:
                await until(lambda: w.sync_handle.switching == bob, "the new token waiting")
                users.remove("alice")  # the old token revoked: its connection closed, 401
                await until(lambda: switch.done(), "the switch done once alice is refused")
            finally:
                release.set()  # the hub applies the batch in flight, as alice's
            await switch
            assert w.sat.config.token == bob
            st = await _all_synced(w)
            await close_window(w)
            w.close()
            # before: the edits the hub had applied were "already applied with other
            # actions … nothing of this one was applied": false conflicts
            assert st.pending == 0 and st.conflicts == 0 and st.put_aside == 0, st
            assert len(ledger.events(ZERO_REV)) == N and ledger.count("field.site") == N
    finally:
        users.close()
