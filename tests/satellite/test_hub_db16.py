"""evt.stat's ``db`` (an Outpost extension): a satellite names the hub's own database failing
(cluster review 15: it said "still catching up"); the hub's words are shown only when short
and printable. The whole path against a real hub: tests/scaleout/test_pgwatch16.py."""

from __future__ import annotations

from core.satellite.machine import HUB_DB_DOWN, hub_db_problem


def test_hub_db_problem_reads_the_stat() -> None:
    assert hub_db_problem({"db": "ok"}) == ""
    assert hub_db_problem({"rev": "2026-11-28T00:00:00Z"}) == ""  # daql, older hubs
    assert hub_db_problem(None) == ""
    said = hub_db_problem({"db": "unavailable", "db_why": "it cannot be reached"})
    assert said.startswith(f"{HUB_DB_DOWN} (it cannot be reached), the hub said: ")
    assert "until its operator brings the database back" in said
    assert hub_db_problem({"db": "unavailable"}).startswith(f"{HUB_DB_DOWN}, the hub said")
    # the hub's kind when it knows none (hubserver.health): not "unavailable (unavailable)"
    assert hub_db_problem({"db": "unavailable", "db_why": "unavailable"}).startswith(
        f"{HUB_DB_DOWN}, the hub said")
    for hostile in ("\x1b]0;pwned\x07", "x" * 81, 7):
        got = hub_db_problem({"db": "unavailable", "db_why": hostile})
        assert got.startswith(f"{HUB_DB_DOWN}, the hub said"), got
