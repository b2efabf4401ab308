"""Error replies as a client reads them, and the wording of a conflict."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import ConflictError
from core.ledger import MemLedger
from core.model import Action, Cmd, Trans
from core.schema import Project
from core.wire import decode_error


@pytest.mark.parametrize("payload", [{"err": ""}, {"err": None}, {"err": "", "res": None}])
def test_an_empty_err_is_an_error_not_a_success(payload: dict[str, Any]) -> None:
    assert decode_error(payload) == ("unknown error from the hub", ())


@pytest.mark.parametrize("payload", [{"res": None}, {"res": 1, "err": None}, None, [1]])
def test_results_are_not_errors(payload: Any) -> None:
    assert decode_error(payload) is None


def test_an_err_message_is_kept() -> None:
    assert decode_error({"err": "no new subscriptions"}) == ("no new subscriptions", ())


def test_a_conflict_message_ends_with_how_to_fix_it(prod: Project) -> None:
    led = MemLedger(prod)
    base = led.publish(Trans((Action("prod.cat", "1", Cmd.NEW, {"name": "a"}),)), "ann").rev
    led.publish(Trans((Action("prod.cat", "1", Cmd.MOD, {"name": "theirs"}),), base=base), "bob")
    with pytest.raises(ConflictError) as got:
        led.publish(Trans((Action("prod.cat", "1", Cmd.MOD, {"name": "mine"}),), base=base),
                    "ann")
    msg = str(got.value)
    assert msg.startswith("conflict: mod prod.cat 1: field name changed at ")
    assert msg.endswith(" by bob. To fix: sync, then resolve it in the Conflicts view or with "
                        "`outpost conflicts` / `outpost resolve UID --keep mine|theirs`, or "
                        "per field `outpost resolve UID --field FIELD=mine|theirs`")
