"""Review "disk" (session 16), finding 5 (b): `outpost-hub backup` under a file size limit
(``ulimit -f``) said "disk I/O error: check that the directory exists…" without naming the
limit, as the ledger's own messages do. A real RLIMIT_FSIZE on the child process."""

from __future__ import annotations

import os
from pathlib import Path

from tests.hub.test_ops_review9 import _backup, _run


def test_a_backup_over_the_file_size_limit_names_it(tmp_path: Path) -> None:
    backup = _backup(tmp_path, 4000, size=200)
    restored = tmp_path / "hub.db"
    assert _run("restore", str(backup), "--db", str(restored)).returncode == 0
    dest = tmp_path / "out" / "b.ledger"
    dest.parent.mkdir()
    r = _run("backup", str(dest), "--db", str(restored), limit=300_000)
    assert r.returncode == 2 and f"backup to {dest} failed" in r.stderr, r.stderr
    assert "at most 300,000 bytes (ulimit -f)" in r.stderr, r.stderr
    assert "raise the limit" in r.stderr and "no backup file was made" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and sorted(os.listdir(dest.parent)) == []
