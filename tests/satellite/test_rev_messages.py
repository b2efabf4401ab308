"""Revisions in messages are RFC 3339, never the raw integer (review session 7, 14f)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ValidationError
from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.schema import Project


def test_a_base_after_the_replica_is_named_as_rfc3339(tmp_path: Path, project: Project) -> None:
    sat = Satellite(tmp_path / "a", project)
    try:
        act = [Action("field.site", "s1", Cmd.NEW, {"name": "n"})]
        with pytest.raises(ValidationError, match=r"base revision 2026-11-27T03:46:54\.628Z is "
                           r"not between 0 and the replica's revision 0001-01-01T00:00:00Z"):
            sat.pub(act, base=63931348014628)
        with pytest.raises(ValidationError, match="base revision -5 is not between"):
            sat.pub(act, base=-5)
    finally:
        sat.close()
