"""``SqlLedger.applied_uids`` / ``uid_rev`` (session 16) on every SQL backend and layout: from
``evt_uid`` (a hub's ledger) and from ``evt_audit`` alone (``uids_in_audits``, ``uid_table``
off: a satellite's replica of data format 2) give the same answers."""

from __future__ import annotations

from core.ledger.sql import SqlLedger
from core.model import Audit, Cmd, Event

SITE = "field.site"


def test_applied_uids_read_from_the_audits_equal_those_of_evt_uid(
        sql_ledger: SqlLedger) -> None:
    led = sql_ledger
    n = 1100  # more than one primary-key query of evt_uid (500)
    uid = [f"u{i}" for i in range(n)]
    uid[5], uid[600] = "", "u2"  # an audit without a uid; a uid at a second revision
    evs = [Event(i + 1, 100 + i, SITE, f"k{i}", Cmd.NEW, {"name": "x"}) for i in range(n)]
    led.replicate(100 + n - 1, evs, [Audit(100 + i, 1, 1, "bob", None, u)
                                     for i, u in enumerate(uid)])
    asked = [*uid[::3], "nope", ""]
    by_table = led.applied_uids(asked)
    assert by_table["u2"] == 102 and "" not in by_table and "nope" not in by_table
    assert len(by_table) == len({u for u in uid[::3] if u})
    led.uids_in_audits = True
    assert led.applied_uids(asked) == by_table
    assert [led.uid_rev(u) for u in ("u2", "u9", "nope", "")] == [102, 109, None, None]
    assert led.applied_uids([]) == {}
    # and with the table off, nothing more is written to it
    led.uid_table = False
    led.replicate(100 + n, [Event(n + 1, 100 + n, SITE, "k", Cmd.NEW, {"name": "y"})],
                  [Audit(100 + n, 1, 1, "bob", None, "later")])
    assert led.uid_rev("later") == 100 + n
    led.uids_in_audits = False
    assert led.uid_rev("later") is None and led.uid_rev("u9") == 109
