"""core.satellite.order: the order SQLite gives a field (Satellite.confirmed_order) equals the
order Python computes for the same records (order.ordered_keys, used to place records with
pending edits), on awkward values: case, non-ASCII letters, NUL characters, empty texts, refs
of both kinds, numbers at their limits."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from core.model import Cmd, Event
from core.revision import now_rev
from core.satellite import order
from core.satellite.satellite import Satellite
from core.schema import Project

TOP = "field.obs"
TEXTS = ["", " ", "a", "A", "b", "B", "ß", "SS", "ss", "İ", "i", "I", "é", "É", "e\u0301",
         "😀", "a\x00b", "a\x00a", "a\x00", "A\x00zz", "a\x00é", "\x00", "Z", "z", "_", "[",
         "10", "9", "ǅ"]
TIMES = ["2026-05-02T01:00:00+09:00", "2026-05-01T20:00:00Z", "2026-05-01T18:00:00-05:00",
         "2026-05-01T16:00:00Z", "2026-05-01t16:00:00.5z", "2026-05-01 16:00:00.05Z",
         "2026-05-01T16:00:00.123456789Z", "2026-05-01T16:00:00.1239+00:00",
         "2026-05-01T21:45:00+05:45", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z",
         "1969-12-31T23:59:59.999-00:30", "2024-02-29T12:00:00-23:59", ""]
REFS: list[object] = ["s1", "S1", "s10", "s9", 5, 10, -3, 0, 2**63 - 1, "é", "a\x00b",
                      "a\x00a", "_"]


@pytest.mark.parametrize("seed", range(3))
def test_sqlite_and_python_order_every_field_alike(tmp_path: Path, project: Project,
                                                    seed: int) -> None:
    rnd = random.Random(seed)
    sat = Satellite(tmp_path / "sat", project)
    try:
        rev = now_rev() - 1000
        evs = []
        for i in range(200):
            f = {"species": rnd.choice(TEXTS[1:]), "observer": rnd.choice([*TEXTS, None]),
                 "notes": rnd.choice([*TEXTS, None]), "site": rnd.choice([*REFS, None]),
                 "count": rnd.choice([None, 0, -1, 5, 2**62, -2**63]),
                 "observed": rnd.choice([*TIMES, None])}
            evs.append(Event(i + 1, rev, TOP, f"k{rnd.randint(0, 99)}-{i}", Cmd.NEW, f))
        sat.replica.apply(rev, evs)
        recs = {r.key: r for chunk in sat.confirmed_scan(TOP) for r in chunk}
        assert len(recs) == 200
        for f in project.model(TOP).fields:
            for desc in (False, True):
                keys, vals = sat.confirmed_order(TOP, f.name, desc)
                mine = [(k, order.sort_value(f, (r.fields or {}).get(f.name)))
                        for k, r in recs.items()]
                assert order.ordered_keys(f, mine, desc) == keys, (f.name, desc)
                for k, v in zip(keys, vals, strict=True):  # the values SQL returns, too
                    assert order.order_key(f, v, k) == order.order_key(f, dict(mine)[k], k)
    finally:
        sat.close()


def test_datetimes_order_by_their_instant_not_their_text(tmp_path: Path,
                                                         project: Project) -> None:
    """Review 16: values kept as written with offsets sorted by their text (16:00 UTC
    written +09:00 after 20:00 UTC): SQLite and Python order by the instant."""
    sat = Satellite(tmp_path / "sat", project)
    try:
        rev = now_rev() - 1000
        by_time = ["2026-05-01T15:59:59.999+00:00", "2026-05-02T01:00:00+09:00",
                   "2026-05-01t16:00:00.5z", "2026-05-01T20:00:00Z",
                   "2026-05-01T20:00:00.05Z", "2026-05-01T18:00:01-05:00"]
        keys = ["k5", "k3", "k0", "k4", "k1", "k2"]  # not in time order
        sat.replica.apply(rev, [Event(i + 1, rev, TOP, k, Cmd.NEW,
                                      {"species": "s", "observed": t})
                                for i, (k, t) in enumerate(zip(keys, by_time, strict=True))])
        f = project.model(TOP).field("observed")
        assert f is not None
        got, _ = sat.confirmed_order(TOP, "observed")
        assert got == keys
        assert sat.confirmed_order(TOP, "observed", True)[0] == keys[::-1]
        mine = [(k, order.sort_value(f, t)) for k, t in zip(keys, by_time, strict=True)]
        assert order.ordered_keys(f, mine[::-1]) == keys
    finally:
        sat.close()
