"""Review 10 (user, finding 7): `outpost-hub backup --help` and `restore --help` say what the
command does and what FILE is (they had a one-line summary and an unexplained `file`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.procs import ROOT


@pytest.mark.parametrize(("cmd", "said", "file_help"), [
    ("backup", "one consistent snapshot", "the backup file to write"),
    ("restore", "a new empty database", "the backup file to read"),
])
def test_backup_and_restore_help_explain_themselves(cmd: str, said: str,
                                                    file_help: str) -> None:
    out = subprocess.run([sys.executable, "-m", "hubserver.cli", cmd, "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert said in text
    assert file_help in text
