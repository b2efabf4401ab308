"""Session 14 noticed, session 15 fixed: a new token in File → Connection settings waits for
the hub to answer the edits in flight (``use_token``), but

1. a connection dropped during that wait lost their answers, the wait ended at once (nothing
   was "in flight" any more) and the new connection sent them again as the new token's user:
   the hub had published them as the old one's and refused the resend ("uid … was already
   applied with other actions": false conflicts);
2. "Sync now" during the wait restarted the connection at once: the same lost answers, and
   the edits held back by the wait went out with the old token.

Now the edits whose answer a closed connection took are sent again first, alone, with the
old token (the hub acks a resend from the same user), and the token changes only once every
one is answered; Sync now during the wait says so and keeps the connection."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import core.satellite.client as client_mod
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

N = 1500  # edits pending: the first request of 100, the second of 1,000 (pipelined), more


class Held:
    """The hub's publishing of the first request held until :meth:`release`;
    ``published`` is set once it is published."""

    def __init__(self, ledger: MemLedger):
        self.release_ev = threading.Event()
        self.published = threading.Event()
        self.first = 0
        publish_many = ledger.publish_many

        def slow_publish(items: Any, now: Any = None) -> Any:
            if not self.first:
                self.first = len(items)
                self.release_ev.wait(30)
                try:
                    return publish_many(items, now)
                finally:
                    self.published.set()
            return publish_many(items, now)

        ledger.publish_many = slow_publish  # type: ignore[method-assign]

    def release(self) -> None:
        self.release_ev.set()


async def _upload_held(tmp_path: Path, users: Users, ledger: MemLedger, hub: Hub,
                       qtbot: Any) -> tuple[Any, Held]:
    """A window uploading N edits as alice, the first request in flight (held)."""
    tok = users.add("alice")
    d = tmp_path / "sat"
    sat = await open_satellite(WindowSpec(d, hub.url, tok))
    await SyncClient(sat, hub.url, tok, rnd=random.Random(0)).sync_once(30)
    for i in range(N):
        sat.pub([Action("field.site", f"k{i:05d}", Cmd.NEW, {"name": f"n{i}"})])
    sat.close()
    held = Held(ledger)
    [w] = await open_windows([WindowSpec(d, hub.url, "", "sat")])
    qtbot.addWidget(w)
    await until(lambda: bool(held.first), "the first edits sent, their publishing held")
    return w, held


async def _all_synced(w: Any) -> Any:
    for _ in range(600):  # bounded: 60 s
        st = w.sat.status()
        if st.online and st.pending == 0:
            return st
        await asyncio.sleep(0.1)
    return w.sat.status()


def _users_of_edits(ledger: MemLedger) -> Counter[str]:
    return Counter(a.usr for a in ledger.audits(ZERO_REV, ledger.rev()) if a.uid)


async def test_connection_dropped_during_the_wait_keeps_the_old_token_until_answered(
        qtbot: Any, user_dirs: Path, tmp_path: Path, project: Project,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    users = Users(tmp_path / "users.db")
    ledger = MemLedger(project)
    held: Held | None = None
    try:
        async with Hub(ledger, port=0, users=users) as hub:
            w, held = await _upload_held(tmp_path, users, ledger, hub, qtbot)
            client = w.sync_handle.client
            old = client.token
            opened_with: list[str] = []
            real_open = client_mod._open

            async def open_after_publish(url: str, token: str, *a: Any, **kw: Any) -> Any:
                # the next connection opens once the hub published the batch whose answer
                # the dropped one lost (so that a resend meets it as published)
                for _ in range(300):  # bounded: 30 s
                    if held.published.is_set():
                        break
                    await asyncio.sleep(0.1)
                opened_with.append(token)
                return await real_open(url, token, *a, **kw)

            monkeypatch.setattr(client_mod, "_open", open_after_publish)
            bob = users.add("bob")
            switch = asyncio.ensure_future(use_token(w, bob))
            await until(lambda: client.machine.hold_edits, "the wait for the answers begun")
            sent = client.machine.edits_in_flight
            assert 0 < sent < N
            ws = client._ws
            assert ws is not None
            ws.transport.abort()  # the connection drops during the wait
            await until(lambda: client._ws is not ws, "the drop seen")
            held.release()
            await asyncio.wait_for(switch, 60)
            assert w.sat.config.token == bob and w.sat.data.load_config().token == bob
            st = await _all_synced(w)
            await close_window(w)
            w.close()
            assert st.pending == 0 and st.conflicts == 0 and st.put_aside == 0, st
            assert len(ledger.events(ZERO_REV)) == N and ledger.count("field.site") == N
            # the edits whose answer was lost: answered for alice, who sent them; the rest: bob
            assert _users_of_edits(ledger) == {"alice": sent, "bob": N - sent}
            # the connection after the drop: with the old token, until the answers came
            assert opened_with[0] == old, "reconnected with the new token before the answers"
    finally:
        if held is not None:
            held.release()
        users.close()


async def test_sync_now_during_the_wait_keeps_the_connection(
        qtbot: Any, user_dirs: Path, tmp_path: Path, project: Project) -> None:  # noqa: F811
    users = Users(tmp_path / "users.db")
    ledger = MemLedger(project)
    held: Held | None = None
    try:
        async with Hub(ledger, port=0, users=users) as hub:
            w, held = await _upload_held(tmp_path, users, ledger, hub, qtbot)
            client = w.sync_handle.client
            bob = users.add("bob")
            switch = asyncio.ensure_future(use_token(w, bob))
            await until(lambda: client.machine.hold_edits, "the wait for the answers begun")
            sent = client.machine.edits_in_flight
            assert 0 < sent < N
            ws = client._ws
            w.sync_action.trigger()  # Sync now (F5) during the wait
            for _ in range(5):  # a moment for a restart, were one made
                await asyncio.sleep(0.1)
            assert client._ws is ws, "Sync now restarted the connection during the wait"
            assert "new token" in w.status.currentMessage(), w.status.currentMessage()
            # which token is in use, and which waits: in the hub's tooltip
            tip = w.status.hub.toolTip()
            assert f"Token in use: the one ending in …{client.token[-4:]}" in tip, tip
            assert f"New token (ending in …{bob[-4:]}): used once" in tip, tip
            assert w.status.hub.text().endswith("(new token waiting)")
            held.release()
            await asyncio.wait_for(switch, 60)
            assert w.sat.config.token == bob
            tip = w.status.hub.toolTip()
            assert f"Token in use: the one ending in …{bob[-4:]}" in tip and "New" not in tip
            st = await _all_synced(w)
            await close_window(w)
            w.close()
            assert st.pending == 0 and st.conflicts == 0 and st.put_aside == 0, st
            assert _users_of_edits(ledger) == {"alice": sent, "bob": N - sent}
    finally:
        if held is not None:
            held.release()
        users.close()


async def test_a_start_token_check_waits_for_the_edits_sent_meanwhile(
        qtbot: Any, user_dirs: Path, tmp_path: Path, project: Project,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`outpost app --token NEW` checks NEW while the window is open; a sync started
    meanwhile (Sync now) uploads with the old token. Once NEW is accepted, the edits that
    sync sent are answered first (it was stopped at once: the answers lost, and the new
    token's connection sent them again as another user, false conflicts)."""
    import desktop.app as app_mod

    users = Users(tmp_path / "users.db")
    ledger = MemLedger(project)
    held: Held | None = None
    try:
        async with Hub(ledger, port=0, users=users) as hub:
            alice = users.add("alice")
            d = tmp_path / "sat"
            sat = await open_satellite(WindowSpec(d, hub.url, alice))
            await SyncClient(sat, hub.url, alice, rnd=random.Random(0)).sync_once(30)
            for i in range(N):
                sat.pub([Action("field.site", f"k{i:05d}", Cmd.NEW, {"name": f"n{i}"})])
            sat.close()
            held = Held(ledger)
            go = asyncio.Event()
            real_fetch = app_mod.fetch_hub

            async def fetch_later(*a: Any, **kw: Any) -> Any:  # the check, until go
                await asyncio.wait_for(go.wait(), 60)
                return await real_fetch(*a, **kw)

            monkeypatch.setattr(app_mod, "fetch_hub", fetch_later)
            bob = users.add("bob")
            [w] = await open_windows([WindowSpec(d, hub.url, bob, "sat")])
            qtbot.addWidget(w)
            client = w.sync_handle.client
            real_open_ws = client._open_ws

            async def open_ws() -> Any:
                # a connection with the new token opens once the hub published the batch
                # held (so that a resend of it meets it as published)
                for _ in range(300):  # bounded: 30 s
                    if client.token == alice or held.published.is_set():
                        break
                    await asyncio.sleep(0.1)
                return await real_open_ws()

            client._open_ws = open_ws
            w.sync_action.trigger()  # Sync now during the check: with the old token
            await until(lambda: bool(held.first), "the first edits sent, their publishing held")
            sent = client.machine.edits_in_flight
            assert 0 < sent < N
            go.set()  # the hub accepts the new token
            for _ in range(5):
                await asyncio.sleep(0.1)
            held.release()
            assert await asyncio.wait_for(w.token_check, 60) is True
            assert w.sat.config.token == bob
            st = await _all_synced(w)
            await close_window(w)
            w.close()
            assert st.pending == 0 and st.conflicts == 0 and st.put_aside == 0, st
            assert _users_of_edits(ledger) == {"alice": sent, "bob": N - sent}
    finally:
        if held is not None:
            held.release()
        users.close()


async def test_work_offline_during_the_wait_changes_nothing(
        qtbot: Any, user_dirs: Path, tmp_path: Path, project: Project) -> None:  # noqa: F811
    """"Work offline" ticked during the wait closes the connection: the answers are lost and
    none can come. The switch is not made (it was: the new token was stored, and unticking
    sent the edits whose answer was lost again as the new token's user); said, and the old
    token syncs them once unticked."""
    users = Users(tmp_path / "users.db")
    ledger = MemLedger(project)
    held: Held | None = None
    try:
        async with Hub(ledger, port=0, users=users) as hub:
            w, held = await _upload_held(tmp_path, users, ledger, hub, qtbot)
            client = w.sync_handle.client
            old = client.token
            bob = users.add("bob")
            switch = asyncio.ensure_future(use_token(w, bob))
            await until(lambda: client.machine.hold_edits, "the wait for the answers begun")
            w.status.offline.click()  # Work offline
            await until(lambda: w.sat.offline_mode, "offline")
            held.release()
            with pytest.raises(ConfigError) as exc:
                await asyncio.wait_for(switch, 60)
            assert "\"Work offline\" was ticked before the hub answered" in str(exc.value)
            assert "nothing was changed" in str(exc.value)
            assert w.sat.config.token == old and w.sat.data.load_config().token == old
            assert client.token == old and not client.machine.hold_edits
            w.status.offline.click()  # online again (while the stop may still run): old token
            await until(lambda: not w.sat.offline_mode, "online")
            st = await _all_synced(w)
            await close_window(w)
            w.close()
            assert st.pending == 0 and st.conflicts == 0 and st.put_aside == 0, st
            assert _users_of_edits(ledger) == {"alice": N}
    finally:
        if held is not None:
            held.release()
        users.close()


async def test_work_offline_ticked_and_unticked_at_once_syncs_again(
        qtbot: Any, user_dirs: Path, tmp_path: Path, project: Project) -> None:  # noqa: F811
    """Unticking "Work offline" while the stop its ticking made still ran was ignored (the
    sync looked running): the window stayed offline with the box unticked."""
    users = Users(tmp_path / "users.db")
    try:
        async with Hub(MemLedger(project), port=0, users=users) as hub:
            tok = users.add("alice")
            d = tmp_path / "sat"
            (await open_satellite(WindowSpec(d, hub.url, tok))).close()
            [w] = await open_windows([WindowSpec(d, hub.url, "", "sat")])
            qtbot.addWidget(w)
            await until(lambda: w.sat.status().online, "online")
            run = w.sync_handle._task
            w.status.offline.click()  # Work offline
            assert w.sync_handle.running  # its stop has begun, not ended
            w.status.offline.click()  # and off again at once
            await until(lambda: run.done(), "the first run stopped")
            await until(lambda: not w.sat.offline_mode and w.sync_handle.running
                        and w.sync_handle._task is not run and w.sat.status().online,
                        "online again, in a new run")
            await close_window(w)
            w.close()
    finally:
        users.close()
