"""The conflicts view's refresh (on every change while a conflict exists) decodes the rejected
receipts and, for "earlier, you", the last accepted one only: not every accepted receipt
(session 11: 0.1-0.4 s per refresh with 20,000). Real SQLite file, the real model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.satellite.queue import Queue
from core.schema import Project
from desktop.models.conflicts import ConflictsModel
from tests.satellite.test_queue_reads import ACCEPTED, filled


def test_the_refresh_decodes_the_rejected_and_the_last_accepted_receipt_only(
        qtbot: Any, tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    sat, _ = filled(tmp_path, project)
    try:
        sat.config = sat.config.with_hub("ws://h", token="t")
        decoded: list[str] = []
        real = Queue._receipt

        def counted(self: Queue, r: Any) -> Any:
            decoded.append(r["uid"])
            return real(self, r)

        monkeypatch.setattr(Queue, "_receipt", counted)
        m = ConflictsModel(sat)
        decoded.clear()
        m.refresh()
        assert m.rowCount() == 1
        assert sorted(decoded) == sorted(["rej", f"u{ACCEPTED - 1:05d}"])
        [text] = m.explain()
        assert "earlier, you changed" in text  # the winner is the user's own accepted edit
    finally:
        sat.close()
