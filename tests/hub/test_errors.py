"""Error replies as a client reads them."""

from __future__ import annotations

from typing import Any

import pytest

from core.wire import decode_error


@pytest.mark.parametrize("payload", [{"err": ""}, {"err": None}, {"err": "", "res": None}])
def test_an_empty_err_is_an_error_not_a_success(payload: dict[str, Any]) -> None:
    assert decode_error(payload) == ("unknown error from the hub", ())


@pytest.mark.parametrize("payload", [{"res": None}, {"res": 1, "err": None}, None, [1]])
def test_results_are_not_errors(payload: Any) -> None:
    assert decode_error(payload) is None


def test_an_err_message_is_kept() -> None:
    assert decode_error({"err": "no new subscriptions"}) == ("no new subscriptions", ())

