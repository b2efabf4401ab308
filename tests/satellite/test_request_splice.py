"""An ``evt.sat`` request splices each queued transaction's stored action JSON (real SQLite
files): the bytes sent are the ones encoding the actions again would give, for edits queued
by this process and for edits read back from the file after a restart (an offline replay)."""

from __future__ import annotations

import random
from pathlib import Path

import orjson

from core.model import Action, Cmd
from core.satellite.machine import SyncMachine
from core.satellite.satellite import Satellite
from core.schema import Project
from core.wire import dec_trans, dumps, enc_trans, rev_memo

SITE = "field.site"


def _edits(sat: Satellite) -> None:
    sat.pub([Action(SITE, "a", Cmd.NEW, {"name": "A", "lat": 1.5, "notes": "é \"q\" \\n"})])
    sat.pub([Action(SITE, "b", Cmd.NEW, {"name": "B", "region": None, "lat": -0.0})])
    sat.pub([Action(SITE, "c", Cmd.NEW, {"name": "C"}), Action(SITE, "d", Cmd.NEW,
                                                                 {"name": "D"})])
    sat.pub([Action(SITE, "a", Cmd.DEL)])  # waits behind the first edit of "a"


def _check(sat: Satellite) -> None:
    enc = SyncMachine(sat, random.Random(1))._encoder()
    out = sat.outbox()
    assert len(out) == 3
    for t in out:
        assert sat.acts_json(t) is not None  # the splice is taken
        fmt = rev_memo()
        spliced = enc(t, fmt)
        assert spliced == dumps(enc_trans(t, fmt))  # the same bytes
        assert dec_trans(orjson.loads(spliced)) == t


def test_queued_and_reread_edits_are_sent_as_encoded(tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path / "s", project)
    try:
        _edits(sat)
        _check(sat)
    finally:
        sat.close()
    again = Satellite(tmp_path / "s", project)  # the queue read back from the file
    try:
        _check(again)
    finally:
        again.close()


def test_a_store_without_the_texts_encodes_the_actions(project: Project) -> None:
    from core.model import Trans

    class Bare:  # a SyncStore without the optional acts_json
        pass

    t = Trans((Action(SITE, "k", Cmd.NEW, {"name": "N"}),), base=5, uid="u1")
    enc = SyncMachine(Bare(), random.Random(1))._encoder()  # type: ignore[arg-type]
    fmt = rev_memo()
    assert enc(t, fmt) == dumps(enc_trans(t, fmt))
