"""Keep mine / Keep theirs on many selected edits in the conflicts view resolves them
``RESOLVE_CHUNK`` at a time, each step one local commit (``Satellite.resolve_many``; session
14: a commit per edit, ~10 ms each: 1,092 took 12 s). Real satellites and hub, real widgets;
commits counted through SQLAlchemy's events on the queue's engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from core.satellite.api import Keep, ReceiptState
from core.schema import Project
from desktop.widgets import conflicts as widgets_conflicts
from hubserver.server import Hub
from tests.desktop.test_conflicts_scale13 import conflicts, dialog, hub  # noqa: F401


async def test_keep_mine_on_six_is_two_commits_of_three(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = await conflicts(tmp_path, project, hub, 6)
    try:
        w, dlg = dialog(qtbot, a)
        monkeypatch.setattr(widgets_conflicts, "RESOLVE_PROGRESS", 4)
        monkeypatch.setattr(widgets_conflicts, "RESOLVE_CHUNK", 3)
        monkeypatch.setattr(dlg, "_confirm", lambda keep, n, *_: True)
        commits: list[int] = []
        event.listen(a.queue.engine, "commit", lambda _c: commits.append(1))
        uids = dlg.model.uids()
        dlg.select_uids(uids)
        news = dlg.resolve_selected(Keep.MINE)
        assert len(news) == 6 and len(commits) == 2  # was 6
        assert not a.receipts([ReceiptState.REJECTED])
        assert [r.resolves for r in a.receipts([ReceiptState.PENDING])] == uids
        assert dlg.model.rowCount() == 0 and w.status.conflict_count == 0
    finally:
        a.close()
        b.close()
