"""Firstday review 14: a second `outpost demo` beside a running one said "the demo hub did
not start within 30 s", the real reason ("already served by another hub") only in the log
tail it printed. The hub's own reason is said first, with what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from desktop.demo import start_hub


def test_a_second_demo_hub_on_the_same_data_says_why(tmp_path: Path) -> None:
    first = start_hub(tmp_path)
    try:
        with pytest.raises(ConfigError) as err:
            start_hub(tmp_path, timeout=60)
    finally:
        first.stop()
    text = str(err.value)
    assert text.startswith("the demo hub could not start: "), text
    assert "already served by another hub" in text, text
    assert "is another `outpost demo` running?" in text, text
    assert "did not start within" not in text
