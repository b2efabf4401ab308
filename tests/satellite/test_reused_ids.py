"""A hub whose events reuse event ids the replica holds (restored from an older backup,
numbering its new events again) is refused by the replica's ledger: the message tells the
user what happened and the fix, in the satellite's words, without naming an API."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ValidationError
from core.model import Cmd, Event
from core.satellite.satellite import Satellite
from core.schema import Project

SITE = "field.site"


def test_events_reusing_held_ids_are_refused_with_the_carry_fix(tmp_path: Path,
                                                                 project: Project) -> None:
    sat = Satellite(tmp_path / "sat", project)
    try:
        assert sat.replica.ledger.layout == "by-id"
        held = [Event(i, 1000 + i, SITE, f"k{i}", Cmd.NEW, {"name": "x"})
                for i in range(1, 11)]
        sat.replica.apply(2000, held)
        # the hub was restored at 1005 (ids up to 5) and numbers its new events from 6
        with pytest.raises(ValidationError) as info:
            sat.replica.apply(3000, [Event(6, 2500, SITE, "z", Cmd.NEW, {"name": "y"})])
        msg = str(info.value)
        assert "the hub sent event 6, but this replica already holds events up to 10" in msg
        assert "holds revisions the hub lost or reused" in msg
        assert "new data directory" in msg
        assert "outpost carry OLD_DIR --data NEWDIR --accepted" in msg
        assert "add_rev_index" not in msg and "SqlLedger" not in msg
        assert "resync" not in msg
        assert sat.rev() == 2000 and sat.replica.ledger.events(0) == held  # nothing stored
    finally:
        sat.close()
