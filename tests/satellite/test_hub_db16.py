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


def test_a_failed_read_after_a_stat_saying_the_database_is_down_names_the_database() -> None:
    """A stopped PostgreSQL (refusing connections): the hub's evt.stat says ``db:
    unavailable``, then its evt.sat answers a failed read; the reason kept is the hub's
    database, not "could not answer evt.sat" (merge review 16a)."""
    import random

    import orjson

    from core.revision import format_rev
    from core.satellite.machine import SyncMachine, frames_of
    from core.wire import ERR_CODE_READ, format_reply
    from tests.satellite.test_machine import FakeStore, opened, trans

    st = FakeStore()
    st.pending = [trans("u1")]
    m = SyncMachine(st, random.Random(1))
    assert opened(m) == "evt.stat#1"
    m.received(format_reply("evt.stat", "1", {"rev": format_rev(5000), "mig": "v1",
                                              "acks": True, "db": "unavailable",
                                              "db_why": "it cannot be reached"}), 0.0)
    [sat] = frames_of(m.take())
    assert sat.startswith("evt.sat#2")
    assert m.info.last_error.startswith(HUB_DB_DOWN)
    err = {"err": "evt.sat: the hub could not read its ledger to answer; ask again later",
           "code": ERR_CODE_READ}
    m.received("evt.sat#2\n" + orjson.dumps(err).decode(), 0.1)
    assert m.info.last_error.startswith(f"{HUB_DB_DOWN} (it cannot be reached)"), \
        m.info.last_error
