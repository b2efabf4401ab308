"""Firstday review 14: `outpost-hub serve`, `verify` and `user add|list|remove --help` had no
description or example, `--role` no help nor default, `name` and `--log-level` none; and
`outpost export --help` spoke of "session 11". Every command's help now says what it does."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.procs import ROOT


def _help(module: str, *cmd: str) -> str:
    out = subprocess.run([sys.executable, "-m", module, *cmd, "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("cmd", [("serve",), ("verify",), ("backup",), ("restore",),
                                 ("user", "add"), ("user", "list"), ("user", "remove")])
def test_every_hub_command_describes_itself(cmd: tuple[str, ...]) -> None:
    text = _help("hubserver.cli", *cmd)
    rest = text.partition("\n\n")[2]
    description = rest.split("\n\n")[0]
    assert not description.startswith(("positional arguments", "options")), text
    assert len(description.split()) >= 8, text  # a sentence, not a label
    assert "--log-level" not in text or "tokens are never logged" in " ".join(text.split())
    if cmd in (("serve",), ("user", "add")):
        assert "examples:" in text and "--db hub.sqlite" in text, text
    if cmd == ("user", "add"):
        flat = " ".join(text.split())
        assert "reads only" in flat and "(default: writer)" in flat, text


def test_no_session_numbers_in_the_cli_help() -> None:
    for module, cmds in (("desktop.headless", ("connect", "pub", "sync", "status", "show",
                                                "history", "conflicts", "resolve", "import",
                                                "export", "carry")),
                         ("hubserver.cli", ("serve", "verify", "backup", "restore"))):
        for c in cmds:
            text = _help(module, c).lower()
            assert "session " not in text and "review" not in text, (module, c, text)
