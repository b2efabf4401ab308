"""Several ledgers opening one empty database at the same moment (hubs started together):
every one opens, the tables are made once, and they publish into one revision sequence."""

from __future__ import annotations

import threading

import pytest

from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.schema import Project

pytestmark = [pytest.mark.pg, pytest.mark.timeout(120)]

OPENERS = 6


def open_together(url: str, project: Project) -> tuple[list[SqlLedger], list[BaseException]]:
    start = threading.Barrier(OPENERS)
    leds: list[SqlLedger] = []
    errs: list[BaseException] = []
    lock = threading.Lock()

    def one() -> None:
        start.wait(timeout=30)
        try:
            led = SqlLedger(url, project)
        except BaseException as exc:  # collected and asserted on below
            with lock:
                errs.append(exc)
            return
        with lock:
            leds.append(led)

    threads = [threading.Thread(target=one) for _ in range(OPENERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return leds, errs


@pytest.mark.parametrize("attempt", range(3))  # the race needs an empty database each time
def test_simultaneous_first_open_on_postgres(fresh_pg_db: str, project: Project,
                                             attempt: int) -> None:
    leds, errs = open_together(fresh_pg_db, project)
    try:
        assert errs == [], f"attempt {attempt}: {errs[0]!r}"
        assert len(leds) == OPENERS
        revs = []
        for i, led in enumerate(leds):
            rev = led.publish(Trans((Action("field.site", f"s{i}", Cmd.NEW,
                                               {"name": f"site {i}"}),)), "t").rev
            revs.append(rev)
        assert revs == sorted(revs) and len(set(revs)) == OPENERS
        assert leds[0].keys("field.site") == [f"s{i}" for i in range(OPENERS)]
    finally:
        for led in leds:
            led.close()
