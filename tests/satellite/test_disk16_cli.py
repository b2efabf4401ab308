"""Review "disk" (session 16), finding 4: `outpost export T > FILE` (and `show`) on a disk
with no room for the output ended in a raw traceback (OSError ENOSPC/EFBIG from the CSV
writer); now one line names the file, the problem and the fix, exit 1. The full disk is a
real file size limit (RLIMIT_FSIZE, ``ulimit -f``) on the child process."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.schema import Project

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 256 * 1024
"""Largest file the child may write: the export is several times this."""


def _small_disk() -> None:
    # Python ignores SIGXFSZ: a write past the limit fails (EFBIG) as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


@pytest.mark.parametrize("command", ["export", "show"])
def test_output_that_does_not_fit_is_said_in_one_line(tmp_path: Path, project: Project,
                                                      command: str) -> None:
    d = tmp_path / "sat"
    sat = Satellite(d, project)
    try:
        for j in range(4):
            sat.pub([Action("field.site", f"s{j}-{i}", Cmd.NEW,
                            {"name": f"s{i}", "notes": "n" * 2000}) for i in range(100)])
    finally:
        sat.close()
    out = tmp_path / "out.txt"
    with open(out, "wb") as f:
        proc = subprocess.run(
            [sys.executable, "-m", "desktop.cli", command, "field.site", "--data", str(d)],
            # no .pyc written under the limit: CPython writes one cut short (corrupt cache)
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"},
            stdout=f,
            stderr=subprocess.PIPE, preexec_fn=_small_disk, timeout=120, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"outpost: cannot write the output of `outpost {command}` to {out}: "
                          f"this process may write files of at most {LIMIT:,} bytes "
                          "(ulimit -f): raise the limit, or write it to another disk"), err
    assert "incomplete" in err and out.stat().st_size == LIMIT


async def test_a_replica_copied_without_its_wal_is_said_as_such(tmp_path: Path,
                                                                project: Project) -> None:
    """copy_db_only.sh: the app's edits are in satellite.db-wal (no checkpoint yet, or a
    crash); satellite.db copied alone (with config.json and schema.json) to a new laptop:
    `outpost status` there blamed an interrupted creation and advised `outpost sync
    --once`, which makes a new, empty replica without the edits."""
    from tests.satellite.test_cli import cli

    a = tmp_path / "a"
    sat = Satellite(a, project)  # open, as the app (or one killed) leaves it: no checkpoint
    try:
        for i in range(3):
            sat.pub([Action("field.site", f"e{i}", Cmd.NEW, {"name": f"edit {i}"})])
        assert (a / "satellite.db-wal").stat().st_size > 0
        copy = tmp_path / "copy"
        copy.mkdir()
        for name in ("satellite.db", "config.json", "schema.json"):
            if (a / name).exists():
                shutil.copy(a / name, copy / name)
        for _ in range(2):  # the first reader leaves an empty -wal behind: the same words
            rc, _out, err = await cli(copy, "status", json_out=False)
            assert rc == 1, err
            assert "being created" not in err and "run `outpost sync --once` to make it " \
                "again" in err, err
            assert f"the replica {copy / 'satellite.db'} is incomplete and its write-ahead " \
                "log satellite.db-wal is not beside it" in err, err
            assert "copy the whole folder again, satellite.db-wal and satellite.db-shm " \
                "included" in err and "do not run `outpost sync` here first" in err, err
    finally:
        sat.close()
