"""``evt.sat``'s ``last`` (ours, session 15): the client's last event at or before its
``rev``; the hub refuses the request (``code`` ``diverged``, its own ``last``) before
publishing or subscribing anything when its own differs, and answers as always when it is
the same; a request without it (daql's clients) is not checked. Served from the recent
events when they reach back to ``rev``, else read from the ledger (a hub just started):
both are checked, on a MemLedger and on a real SQLite file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from core.ledger import MemLedger
from core.ledger.protocols import Publisher
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.revision import ZERO_REV, format_rev, parse_rev
from core.schema import Project
from hubserver.service import HubService, Send
from tests.hub.conftest import Clock

Z = "0001-01-01T00:00:00Z"


def reply(svc: HubService, conn: str, obj: dict[str, Any]) -> dict[str, Any]:
    outs = svc.handle_sync(conn, "evt.sat#7\n" + orjson.dumps(obj).decode())
    first = outs[0]
    assert isinstance(first, Send) and first.text.startswith("evt.sat#7\n"), outs
    out: dict[str, Any] = orjson.loads(first.text.split("\n", 1)[1])
    return out


def sat(rev: int, last: tuple[int, int] | None, trans: list[Any] | None = None,
        tops: tuple[str, ...] = ("prod.cat",)) -> dict[str, Any]:
    d: dict[str, Any] = {"rev": format_rev(rev), "trans": trans or [], "tops": list(tops),
                         "audits": True}
    if last is not None:
        d["last"] = {"id": last[0], "rev": format_rev(last[1])}
    return d


@pytest.fixture(params=["mem", "sqlite"])
def ledger(request: pytest.FixtureRequest, prod: Project, tmp_path: Path) -> Publisher:
    if request.param == "mem":
        return MemLedger(prod)
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", prod)
    request.addfinalizer(led.close)
    return led


def check(svc: HubService, revs: list[int]) -> None:
    """Three events (ids 1-3) at ``revs``: the same history answers, another is refused."""
    ledger = svc.ledger
    svc.connect("B", "bob", "writer")
    # the same history: answered as always (the events after rev of the topics)
    ok = reply(svc, "B", sat(revs[1], (2, revs[1])))
    assert "err" not in ok and [e["id"] for e in ok["res"]["evs"]] == [3], ok
    assert "err" not in reply(svc, "B", sat(revs[2], (3, revs[2])))
    # no last: not checked (a daql client)
    assert "err" not in reply(svc, "B", sat(revs[1], None))
    # another last event at or before rev: refused whole, nothing published
    n = ledger.rev()
    for mine in ((1, revs[0]), (2, revs[0]), (0, 0), (3, revs[1])):
        bad = reply(svc, "B", sat(revs[1], mine, [
            {"uid": "u1", "base": format_rev(revs[1]), "acts": [
                {"top": "prod.cat", "key": "9", "cmd": "new", "arg": {"name": "x"}}]}]))
        assert bad.get("code") == "diverged", (mine, bad)
        assert bad["last"] == {"id": 2, "rev": format_rev(revs[1])}, bad
        assert "is not the client's" in bad["err"] and "--accepted" in bad["err"], bad
    assert ledger.rev() == n and ledger.uid_rev("u1") is None
    # a replica holding an event where the hub has none at or before rev
    bad = reply(svc, "B", sat(revs[0] - 1, (1, revs[0] - 1)))
    assert bad.get("code") == "diverged" and bad["last"] is None, bad
    # the refusal left the subscription as it was: B (subscribed to prod.cat by the
    # answered requests) still gets a push of the next publish
    svc.connect("A", "ann", "writer")
    outs = svc.handle_sync("A", "evt.pub#1\n" + orjson.dumps({"acts": [
        {"top": "prod.cat", "key": "77", "cmd": "new", "arg": {"name": "z"}}]}).decode())
    assert any(getattr(o, "conn", None) == "B" for o in outs), outs
    svc.disconnect("A")
    svc.disconnect("B")


def test_last_is_checked_against_the_ledger(ledger: Publisher, clock: Clock,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """A hub just started: its recent events are empty, the ledger is read. Each refusal is
    logged at WARNING (the operator learns the ledger lost what a satellite holds)."""
    revs = [ledger.publish(Trans((Action("prod.cat", str(i), Cmd.NEW, {"name": f"c{i}"}),)),
                           "ann", clock()).rev for i in range(3)]
    assert ledger.last_event_at(revs[1]) == (2, revs[1])
    assert ledger.last_event_at(revs[0] - 1) == (0, ZERO_REV)
    assert ledger.last_event_at(revs[2] + 5) == (3, revs[2])
    svc = HubService(ledger, clock)
    assert svc._recent.last_at(revs[1]) is None  # not known there: read
    with caplog.at_level("WARNING", logger="outpost.hub"):
        check(svc, revs)
    said = [r.getMessage() for r in caplog.records if "is not the client's" in r.getMessage()]
    assert len(said) == 5 and "user bob" in said[0], said


def test_last_is_checked_against_the_recent_events(ledger: Publisher, clock: Clock) -> None:
    """A hub that published the events itself answers from its recent events."""
    svc = HubService(ledger, clock)
    svc.connect("A", "ann", "writer")
    revs = []
    for i in range(3):
        out = svc.handle_sync("A", "evt.pub#1\n" + orjson.dumps({"acts": [
            {"top": "prod.cat", "key": str(i), "cmd": "new",
             "arg": {"name": f"c{i}"}}]}).decode())
        assert isinstance(out[0], Send)
        revs.append(parse_rev(orjson.loads(out[0].text.split("\n", 1)[1])["res"]["rev"]))
    svc.disconnect("A")
    assert svc._recent.last_at(revs[1]) == (2, revs[1])
    assert svc._recent.last_at(revs[0] - 1) is None
    check(svc, revs)
