"""Merge review 14 (MEDIUM 1): a new token in File → Connection settings (``use_token``)
during an upload stopped the sync in the middle of a send: the hub published the batch in
flight, its answer was lost with the connection, and the new connection sent it again as the
new token's user, which the hub refuses as another transaction with the same uid (~200
conflicts "uid … was already applied with other actions"). The edits in flight are now
answered on the old connection first (the status bar says so), or, when the hub takes too
long, nothing changes and the window goes on with the old token."""

from __future__ import annotations

import asyncio
import random
import re
import threading
from pathlib import Path
from typing import Any

import pytest

import desktop.app as app
from core.errors import ConfigError
from core.ledger.memory import MemLedger
from core.model import Action, Cmd
from core.revision import ZERO_REV
from core.satellite.client import SyncClient
from core.schema import Project
from desktop.app import WindowSpec, close_window, open_satellite, open_windows, use_token
from hubserver.auth import Users
from hubserver.server import Hub
from tests.desktop.test_launch14 import user_dirs  # noqa: F401
from tests.desktop.test_status import until

N = 300  # edits pending: a few requests (the first of 100)


async def _upload_held(tmp_path: Path, project: Project, users: Users, ledger: MemLedger,
                       hub: Hub, qtbot: Any) -> tuple[Any, threading.Event]:
    """A window uploading N edits as alice, with the hub's publishing of the first request
    held (until the event given back is set): that request is in flight."""
    release = threading.Event()
    held: list[int] = []
    publish_many = ledger.publish_many

    def slow_publish(items: Any, now: Any = None) -> Any:
        if not held:
            held.append(len(items))
            release.wait(30)
        return publish_many(items, now)

    tok = users.add("alice")
    d = tmp_path / "sat"
    sat = await open_satellite(WindowSpec(d, hub.url, tok))
    await SyncClient(sat, hub.url, tok, rnd=random.Random(0)).sync_once(30)
    for i in range(N):
        sat.pub([Action("field.site", f"k{i:05d}", Cmd.NEW, {"name": f"n{i}"})])
    sat.close()
    ledger.publish_many = slow_publish  # type: ignore[method-assign]
    [w] = await open_windows([WindowSpec(d, hub.url, "", "sat")])
    qtbot.addWidget(w)
    await until(lambda: bool(held), "the first edits sent, their publishing held")
    return w, release


async def _all_synced(w: Any) -> Any:
    for _ in range(600):  # bounded: 60 s
        st = w.sat.status()
        if st.online and st.pending == 0:
            return st
        await asyncio.sleep(0.1)
    return w.sat.status()


async def test_new_token_mid_upload_waits_for_the_answers(
        qtbot: Any, user_dirs: Path, tmp_path: Path, project: Project) -> None:  # noqa: F811
    users = Users(tmp_path / "users.db")
    ledger = MemLedger(project)
    try:
        async with Hub(ledger, port=0, users=users) as hub:
            w, release = await _upload_held(tmp_path, project, users, ledger, hub, qtbot)
            said: list[str] = []

            def answer() -> None:  # the hub answers a moment after the token changed
                said.append(w.status.currentMessage())
                release.set()

            asyncio.get_running_loop().call_later(1.0, answer)
            bob = users.add("bob")
            try:
                await use_token(w, bob)
            finally:
                release.set()
            assert w.sat.config.token == bob
            st = await _all_synced(w)
            await close_window(w)
            w.close()
            assert st.pending == 0 and st.conflicts == 0 and st.put_aside == 0, st
            assert len(ledger.events(ZERO_REV)) == N and ledger.count("field.site") == N
            assert said and re.match(r"Waiting for the hub to answer the \d+ edits sent with "
                                     r"the old token before using the new one", said[0]), said
    finally:
        users.close()


async def test_new_token_hub_too_slow_changes_nothing(
        qtbot: Any, user_dirs: Path, tmp_path: Path, project: Project,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "SETTLE_S", 0.5)
    users = Users(tmp_path / "users.db")
    ledger = MemLedger(project)
    try:
        async with Hub(ledger, port=0, users=users) as hub:
            w, release = await _upload_held(tmp_path, project, users, ledger, hub, qtbot)
            old = w.sat.config.token
            bob = users.add("bob")
            try:
                with pytest.raises(ConfigError) as exc:
                    await use_token(w, bob)
            finally:
                release.set()
            assert re.search(r"has not answered \d+ edits sent with the old token within "
                             r"0\.5 s", str(exc.value)), exc.value
            assert "nothing was changed" in str(exc.value), exc.value
            assert w.sat.config.token == old and w.sat.data.load_config().token == old
            assert w.sync_handle.client.token == old
            st = await _all_synced(w)  # the old connection goes on, edits included
            await close_window(w)
            w.close()
            assert st.pending == 0 and st.conflicts == 0 and st.put_aside == 0, st
            assert len(ledger.events(ZERO_REV)) == N and ledger.count("field.site") == N
    finally:
        users.close()
