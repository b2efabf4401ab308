"""Fixtures for hub tests: a prod schema like the daql capture, ledgers, a live hub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection

from core.ledger import MemLedger
from core.schema import Project, parse_project
from hubserver.server import Hub

PROD = {
    "project": {"name": "prod"},
    "prod": {
        "cat": {"key": "int", "fields": {"name": {"type": "str"}}},
        "prod": {"key": "int", "fields": {"name": {"type": "str"}, "cat": {"type": "int"}}},
        "label": {"key": "int", "fields": {"name": {"type": "str"}, "tmpl": {"type": "str"}}},
    },
}


@pytest.fixture
def prod() -> Project:
    return parse_project(PROD)


class Clock:
    """A manual revision clock (ms): every reading moves on by ``step``."""

    def __init__(self, start: int = 63_900_000_000_000, step: int = 1):
        self.now = start
        self.step = step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def hub(prod: Project) -> AsyncIterator[Hub]:
    async with Hub(MemLedger(prod), port=0) as h:
        yield h


async def recv_json(ws: ClientConnection, timeout: float = 5.0) -> tuple[str, Any]:
    """The next frame's head and decoded body."""
    text = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(text, str)
    head, _, body = text.partition("\n")
    return head, orjson.loads(body) if body.strip() else None


async def request(ws: ClientConnection, subj: str, body: Any = None,
                  timeout: float = 5.0) -> Any:
    """Send a request with a token and return the payload of its reply (skips pushes)."""
    request.tok += 1  # type: ignore[attr-defined]
    tok = str(request.tok)  # type: ignore[attr-defined]
    text = f"{subj}#{tok}" if body is None else f"{subj}#{tok}\n" + orjson.dumps(body).decode()
    await ws.send(text)
    for _ in range(1000):
        head, payload = await recv_json(ws, timeout)
        if head == f"{subj}#{tok}":
            return payload
    raise AssertionError("no reply")


request.tok = 0  # type: ignore[attr-defined]

