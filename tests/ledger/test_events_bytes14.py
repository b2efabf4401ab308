"""``Ledger.events(..., max_bytes=...)``: a read of large values stops at about the bytes
asked for (whole revisions, at least one), the same events as the unbounded read's first
ones; small values read as before (operator review 14: a catch-up read 1,000 values of
800 KB to send one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.ledger.memory import MemLedger
from core.ledger.protocols import Ledger
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.schema import Project
from tests.support.layout import LAYOUTS, make_sqlite_ledger

SITE = "field.site"


def _fill(led: Ledger) -> None:
    """A small event, then 30 of 10,000 characters, in revisions of 1, 2 and 3; 10 small
    ones of another topic between them."""
    # a small one first: a read sized by its first row read every large one after it
    led.publish(Trans((Action(SITE, "small", Cmd.NEW, {"name": "n"}),)), "u")
    i = 0
    for n in (1, 2, 3) * 5:
        arg = {"name": "n", "notes": "v" * 10_000}
        led.publish(Trans(tuple(Action(SITE, f"k{i + j}", Cmd.NEW, arg) for j in range(n))),
                    "u")
        i += n
        if i % 3 == 0:
            led.publish(Trans((Action("field.obs", f"o{i}", Cmd.NEW, {"species": "x"}),)),
                        "u")


def _check(led: Ledger) -> None:
    _fill(led)
    every = led.events(0, [SITE])
    assert len(every) == 31
    revs = [e.rev for e in every]
    for budget in (1, 5_000, 25_000, 65_000):
        got = led.events(0, [SITE], 1000, budget)
        assert got == every[:len(got)] and got  # the first ones, at least one revision
        assert got[-1].rev != revs[len(got)]  # never inside a revision
        # stopped once past it: before the last two revisions (the one that passed it, and
        # one more fetched with it at most), less than the budget
        last2 = sorted({e.rev for e in got})[-2:]
        before = [e for e in got if e.rev not in last2]
        assert sum(len(e.arg.get("notes", "")) for e in before) < budget, (budget, len(got))
        assert len(got) < len(every)
    assert led.events(0, [SITE], 1000, 10**9) == every  # no cut: as without
    assert led.events(0, [SITE], 7, 10**9) == led.events(0, [SITE], 7)  # the count cuts too
    assert led.events(0, None, 1000, 1)[0] == led.events(0)[0]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_read_by_bytes_on_sqlite(tmp_path: Path, project: Project, layout: str) -> None:
    led = SqlLedger(make_sqlite_ledger(tmp_path / "l.db", layout), project)
    try:
        _check(led)
    finally:
        led.close()


@pytest.mark.pg
def test_a_read_by_bytes_on_postgresql(fresh_pg_db: str, project: Project) -> None:
    led = SqlLedger(fresh_pg_db, project)
    try:
        _check(led)
    finally:
        led.close()


def test_a_read_by_bytes_in_memory(project: Project) -> None:
    _check(MemLedger(project))
