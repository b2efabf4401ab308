"""A hub whose events reuse event ids the replica holds (restored from an older backup,
numbering its new events again) is refused by the replica's ledger: the message tells the
user what happened and the fix, in the satellite's words, without naming an API."""

from __future__ import annotations

import json
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


def test_the_stop_says_pending_edits_may_already_be_on_the_hub(tmp_path: Path,
                                                                project: Project) -> None:
    """Safety review 10, finding 5: the reply that is refused may acknowledge pending edits
    the hub applied; they still show pending (nothing of it is stored), and a user retyping
    them would double them. The message says so, and names carry --accepted."""
    from core.model import Action
    from core.wire import Ack

    sat = Satellite(tmp_path / "sat", project)
    try:
        sat.replica.apply(2000, [Event(i, 1000 + i, SITE, f"k{i}", Cmd.NEW, {"name": "x"})
                                 for i in range(1, 11)])
        uid = sat.pub([Action(SITE, "mine", Cmd.NEW, {"name": "mine"})])
        reused = [Event(6, 2500, SITE, "mine", Cmd.NEW, {"name": "mine"})]
        with pytest.raises(ValidationError) as info:
            sat.replica.apply(3000, reused, acks=[Ack(uid, 2500)])
        msg = str(info.value)
        assert "The hub had already applied 1 of the edits shown pending here" in msg
        assert "do not make them again" in msg and "--accepted" in msg
        assert [r.state.value for r in sat.receipts()] == ["pending"]
        with pytest.raises(ValidationError) as info:
            sat.replica.apply(3000, reused)
        assert "Edits shown pending here may already be on the hub" in str(info.value)
    finally:
        sat.close()


async def test_a_hub_reusing_held_ids_stops_sync_for_good_and_status_names_it(
        tmp_path: Path, project: Project) -> None:
    """Session 9: the replica refused such events with the fix, but the machine dropped the
    connection and retried at every one (the same events, the same failure, for ever;
    `sync --once` waited out its --timeout). Now sync stops for good (STOPPED, as for
    another schema or ledger) at once, and `outpost status` names why. Real hubs on
    127.0.0.1: the second serves the first's ledger id, its events numbered from 1 again."""
    import random

    from core.errors import HubError
    from core.ledger.memory import MemLedger
    from core.model import Action, Trans
    from core.satellite.client import SyncClient
    from core.satellite.machine import Phase
    from hubserver.server import Hub
    from tests.satellite.test_cli import cli

    first = MemLedger(project)
    for i in range(10):
        first.publish(Trans((Action(SITE, f"k{i}", Cmd.NEW, {"name": "x"}),)), "office")
    lost = MemLedger(project, ledger_id=first.ledger_id)  # the same ledger, numbered again
    for i in range(3):
        lost.publish(Trans((Action(SITE, f"z{i}", Cmd.NEW, {"name": "y"}),)), "office",
                     now=first.rev() + 1000 * (i + 1))
    d = tmp_path / "sat"
    sat = Satellite(d, project)
    try:
        async with Hub(first, port=0) as h1:
            await SyncClient(sat, h1.url, rnd=random.Random(0)).sync_once(10)
        assert sat.rev() == first.rev()
        async with Hub(lost, port=0) as h2:
            client = SyncClient(sat, h2.url, rnd=random.Random(0))
            with pytest.raises(HubError) as info:
                await client.sync_once(60)
        msg = str(info.value)
        assert "stopped" in msg and "did not finish within" not in msg, msg
        # session 15: the handshake's history check (evt.sat's last) stops it before any of
        # the reused events comes (the replica's own check of reused ids: the test above)
        assert "the hub lost or reused revisions this replica holds" in msg, msg
        assert client.machine.phase == Phase.STOPPED and client.machine.info.retry_at is None
        assert sat.rev() == first.rev()  # nothing stored
    finally:
        sat.close()
    rc, out, err = await cli(d, "status")
    assert rc == 0, err
    st = json.loads(out)
    assert "the hub lost or reused" in st["last_error"]
    assert "outpost carry OLD_DIR --data NEWDIR --accepted" in st["last_error"]
