"""An ``evt.mon`` catch-up reads the events' keys only: no event argument is read or decoded
(the notes name topics and keys), on a real SQLite ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from core.ledger.sql import SqlLedger
from core.model import Event
from core.schema import Project
from hubserver.limits import Limits
from hubserver.service import HubService, Send
from tests.hub.conftest import Clock


class Decodes(SqlLedger):
    """Counts the events decoded with their argument."""

    decoded = 0

    @staticmethod
    def _event(row: Any) -> Event:
        Decodes.decoded += 1
        return SqlLedger._event(row)


def frame(subj: str, body: Any) -> str:
    return subj + "\n" + orjson.dumps(body).decode()


def test_mon_catch_up_decodes_no_event(prod: Project, clock: Clock, tmp_path: Path) -> None:
    led = Decodes(f"sqlite:///{tmp_path / 'hub.db'}", prod)
    svc = HubService(led, clock, Limits(max_batch=7, rate=1e6, burst=10**6))
    svc.connect("A", "a")
    svc.connect("B", "b")
    for i in range(1, 21):
        svc.handle_sync("A", frame("evt.pub", {"acts": [
            {"top": "prod.cat", "key": str(i), "cmd": "new", "arg": {"name": f"c{i}"}}]}))
        if i % 3 == 0:
            svc.handle_sync("A", frame("evt.pub", {"acts": [
                {"top": "prod.cat", "key": str(i), "cmd": "mod", "arg": {"name": "m"}}]}))
    Decodes.decoded = 0
    outs = svc.handle_sync("B", frame("evt.mon#1", {
        "rev": "2000-01-01T00:00:00Z", "watch": [{"top": "prod.cat", "keys": ["new", "3"]}]}))
    texts = [o.text for o in outs if isinstance(o, Send)]
    b = svc.backlog("B")
    while b is not None:  # the rest of the catch-up, batch by batch
        evs, more = svc.backlog_read(b[0], b[1])
        texts += svc.backlog_push("B", b[0], evs, more)
        b = svc.backlog("B")
    assert texts[0].startswith("evt.mon#1\n")
    keys = [k for t in texts[1:] for n in orjson.loads(t.partition("\n")[2])["note"]
            for w in n["watch"] for k in w["keys"]]
    assert sorted(set(keys), key=int) == [str(i) for i in range(1, 21)]
    assert len(texts) > 3  # in several batches
    assert Decodes.decoded == 0  # before: every event read was decoded with its argument
    led.close()
