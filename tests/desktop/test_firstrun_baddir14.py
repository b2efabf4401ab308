"""Merge review 14 (LOW 3): Connect in the first-run dialog with a data directory that cannot
be one said "…; choose another with --data DIR", a command-line flag the person at the dialog
has no use for: the advice names the dialog's data directory row, as a refused token's names
its token row."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from core.ledger.memory import MemLedger
from core.schema import Project
from hubserver.auth import Users
from hubserver.server import Hub
from tests.desktop.test_launch14 import _dialog, _first_run, user_dirs  # noqa: F401


@pytest.mark.parametrize("bad", ["/proc/outpost-x", "/proc/self/status/x", "FILE"])
async def test_first_run_bad_data_dir_names_the_dialog(
        qtbot: Any, user_dirs: Path, tmp_path: Path, project: Project,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    if bad == "FILE":
        bad = str(tmp_path / "a-file")
        Path(bad).write_text("not a directory\n")
    users = Users(tmp_path / "users.db")
    try:
        good = users.add("alice")
        async with Hub(MemLedger(project), port=0, users=users) as hub:
            task = await _first_run(monkeypatch)
            dlg = _dialog()
            dlg.hub.setText(hub.url)
            dlg.token.setText(good)
            dlg.data_dir.setText(bad)
            dlg.connect_button.click()
            for _ in range(100):  # bounded: the attempt ends at once (no hub needed)
                await asyncio.sleep(0.1)
                if not dlg.trying:
                    break
            said = dlg.error.text()
            assert not dlg.trying and dlg.isVisible() and not task.done(), said
            assert bad in said, said
            assert "--data" not in said, said
            assert ("choose another data directory above" in said
                    or "choose a directory above" in said), said
            assert dlg.connect_button.isEnabled()
            dlg.reject()
            await asyncio.wait_for(task, 10)
    finally:
        users.close()
