"""`outpost show TOPIC [KEY]` builds only the part of the overlay it shows (session 14, big
replicas 2): the pending transactions touching the topic's (or the key's) records and, back
in queue order, the earlier ones sharing a record with one taken. Its output is byte for byte
the output with the whole overlay built (compared here on a queue with transactions across
both topics, a chain through a shared record, local conflicts of both kinds, and unrelated
noise). Real SQLite files; the transactions checked are counted through our own
``QueueView.update``, not timed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop import headless
from tests.satellite.test_reads13 import _hub_change, builds  # noqa: F401 (a fixture)

SITE, OBS = "field.site", "field.obs"


def _queue(path: Path, project: Project) -> None:
    w = Satellite(path, project)
    try:
        for i, k in enumerate("abc"):
            _hub_change(w, 1000 + i, i + 1, k, Cmd.NEW, {"name": k.upper()})
        w.pub([Action(SITE, "a", Cmd.MOD, {"name": "a1"})])  # conflicts: hub change below
        w.pub([Action(SITE, "a", Cmd.MOD, {"region": "West"}),  # across both topics
               Action(OBS, "o1", Cmd.NEW, {"site": "a", "species": "Lynx", "count": 1})])
        w.pub([Action(OBS, "o2", Cmd.NEW, {"site": "c", "species": "Owl"})])
        w.pub([Action(SITE, "b", Cmd.MOD, {"region": "North"})])
        w.pub([Action(SITE, "b", Cmd.MOD, {"notes": "x"}),  # conflicts: hub change below
               Action(SITE, "c", Cmd.MOD, {"notes": "c-note"})])
        w.pub([Action(OBS, "o1", Cmd.MOD, {"count": 2})])
        for i in range(20):  # unrelated to the observations
            w.pub([Action(SITE, f"n{i}", Cmd.NEW, {"name": f"N{i}"})])
        w.pub([Action(SITE, "c", Cmd.MOD, {"lat": 46.5})])
        _hub_change(w, 2000, 10, "a", Cmd.MOD, {"name": "a-theirs"})
        _hub_change(w, 2001, 11, "b", Cmd.MOD, {"notes": "b-theirs"})
    finally:
        w.close()


SHOWS = [[SITE], [OBS], [SITE, "a"], [SITE, "b"], [SITE, "c"], [SITE, "n7"], [OBS, "o1"],
         [OBS, "o2"]]


def _out(data: Path, show: list[str], js: bool, capsys: pytest.CaptureFixture[str]) -> str:
    assert headless.main(["show", *show, "--data", str(data), *(["--json"] if js else [])]) == 0
    return capsys.readouterr().out


def test_show_builds_a_part_and_prints_what_the_whole_overlay_prints(
        tmp_path: Path, project: Project, builds: list[int],  # noqa: F811
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _queue(tmp_path, project)
    part: dict[tuple[str, ...], tuple[str, int]] = {}
    for show in SHOWS:
        for js in (False, True):
            builds.clear()
            part[(*show, str(js))] = (_out(tmp_path, show, js, capsys), sum(builds))
    # the same commands with the whole overlay built (as before)
    monkeypatch.setattr(Satellite, "_overlay_of",
                        lambda self, top, keys=None: self._ov)
    for show in SHOWS:
        for js in (False, True):
            builds.clear()
            whole = _out(tmp_path, show, js, capsys)
            assert sum(builds) == 27  # every pending transaction
            assert part[(*show, str(js))][0] == whole, show
    checked = {k[:-1]: n for k, (_, n) in part.items()}
    # the observations: their 3 transactions, and the 1 before them on site a
    assert checked[(OBS,)] == 4 and checked[(OBS, "o2")] == 1 and checked[(OBS, "o1")] == 3
    assert checked[(SITE, "n7")] == 1
    # c: its two edits, and the edit of b before the one that touches b too
    assert checked[(SITE, "c")] == 3
    assert "a-theirs" in part[(SITE, "a", "False")][0]
    assert "conflict" in part[(SITE, "b", "False")][0]
