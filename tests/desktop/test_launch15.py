"""`outpost app` options left over by session 14 (session 15): ``--token T`` alone is used
for the profile's hub and directory (it was ignored without a word), or refused by name when
no hub is set; ``--data DIR`` alone opens DIR this once (it became the profile's directory,
so the next plain `outpost` opened DIR). Real Qt widgets (offscreen), real hubs on
127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError
from core.ledger.memory import MemLedger
from core.satellite.config import DataDir, default_data_dir
from core.schema import Project
from desktop import cli
from desktop import launch as launch_mod
from desktop.app import WindowSpec, close_window, open_satellite
from desktop.settings import Profile, last_profile, load_profile, save_profile
from hubserver.auth import Users
from hubserver.server import Hub
from tests.desktop.test_launch14 import user_dirs  # noqa: F401
from tests.desktop.test_status import until


async def _start(monkeypatch: pytest.MonkeyPatch, **kw: Any) -> list[Any]:
    """`outpost app ...` as ``launch(**kw)`` runs it, in the test's loop: its windows."""
    started: list[Any] = []
    monkeypatch.setattr(launch_mod, "run_app", lambda start: started.append(start) or 0)
    assert launch_mod.launch(**kw) == 0
    return list(await asyncio.wait_for(started[0](), 60))  # bounded


async def test_token_alone_is_used_for_the_profiles_hub(
        qtbot: Any, user_dirs: Path, tmp_path: Path, project: Project,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    users = Users(tmp_path / "users.db")
    try:
        alice = users.add("alice")
        async with Hub(MemLedger(project), port=0, users=users) as hub:
            d = tmp_path / "mine"
            (await open_satellite(WindowSpec(d, hub.url, alice))).close()
            save_profile(Profile("default", hub.url, "", str(d)))
            bob = users.add("bob")
            [w] = await _start(monkeypatch, token=bob)
            qtbot.addWidget(w)
            await until(lambda: w.sat.config.token == bob, "the new token stored")
            assert "The hub accepted the new token" in w.status.currentMessage()
            await until(lambda: w.sat.status().online, "online with it")
            assert DataDir(d).load_config().token == bob and w.sat.config.hub == hub.url
            p = load_profile("default")
            assert p is not None and p.hub == hub.url and p.path == d
            await close_window(w)
            w.close()
    finally:
        users.close()


def test_token_alone_without_any_hub_is_refused(
        user_dirs: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    with pytest.raises(ConfigError) as exc:
        launch_mod._given(None, "", "T", "")
    assert "--token without --hub" in str(exc.value)
    assert cli.main(["app", "--token=T"]) == 1
    err = capsys.readouterr().err
    assert "--token without --hub: no hub is set yet" in err and "nothing was changed" in err
    assert "outpost app --hub ws://HOST:PORT --token=TOKEN" in err
    assert last_profile() is None and not DataDir(default_data_dir()).path.exists()
    save_profile(Profile("default", "ws://127.0.0.1:9", "", ""))
    with pytest.raises(ConfigError) as exc:  # a profile that does not exist: not the last
        launch_mod._given(None, "", "T", "work")
    assert "the profile 'work' has no hub yet" in str(exc.value)
    p = launch_mod._given(None, "", "T", "")
    assert p is not None and (p.name, p.hub, p.token) == ("default", "ws://127.0.0.1:9", "T")


async def test_data_alone_opens_dir_once(
        qtbot: Any, user_dirs: Path, tmp_path: Path, project: Project,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    users = Users(tmp_path / "users.db")
    try:
        tok = users.add("alice")
        async with Hub(MemLedger(project), port=0, users=users) as hub:
            mine, other = tmp_path / "mine", tmp_path / "other"
            for d in (mine, other):
                (await open_satellite(WindowSpec(d, hub.url, tok))).close()
            save_profile(Profile("default", hub.url, "", str(mine)))
            for kw, kept in (({"data": other}, mine),  # once: the profile stays
                             ({"data": other, "profile": "default"}, other)):  # asked
                [w] = await _start(monkeypatch, **kw)
                qtbot.addWidget(w)
                assert w.sat.data.path == other
                await until(lambda w=w: w.sat.status().online, "online")
                await close_window(w)
                w.close()
                p = last_profile()
                assert p is not None and p.name == "default" and p.path == kept, kw
                assert p.hub == hub.url
    finally:
        users.close()


async def test_data_alone_with_no_profile_yet_is_remembered(
        qtbot: Any, user_dirs: Path, tmp_path: Path, project: Project,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    users = Users(tmp_path / "users.db")
    try:
        tok = users.add("alice")
        async with Hub(MemLedger(project), port=0, users=users) as hub:
            other = tmp_path / "other"
            [w] = await _start(monkeypatch, data=other, hub=hub.url, token=tok)
            qtbot.addWidget(w)
            await until(lambda: w.sat.status().online, "online")
            await close_window(w)
            w.close()
            p = last_profile()
            assert p is not None and p.path == other and p.hub == hub.url
    finally:
        users.close()
