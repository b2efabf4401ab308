"""Review "disk" (session 16), finding 4: `outpost export T > FILE` (and `show`) on a disk
with no room for the output ended in a raw traceback (OSError ENOSPC/EFBIG from the CSV
writer); now one line names the file, the problem and the fix, exit 1. The full disk is a
real file size limit (RLIMIT_FSIZE, ``ulimit -f``) on the child process."""

from __future__ import annotations

import os
import resource
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
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=f,
            stderr=subprocess.PIPE, preexec_fn=_small_disk, timeout=120, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"outpost: cannot write the output of `outpost {command}` to {out}: "
                          f"this process may write files of at most {LIMIT:,} bytes "
                          "(ulimit -f): raise the limit, or write it to another disk"), err
    assert "incomplete" in err and out.stat().st_size == LIMIT
