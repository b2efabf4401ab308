"""Shared fixtures: the demo project and a real PostgreSQL for tests marked ``pg``.

PostgreSQL comes from ``OUTPOST_TEST_PG_URL`` (``make test`` and ``.ci/run`` start a throwaway
cluster and set it; developers can use ``scripts/pg-test-cluster start``). Outside CI a missing
URL skips the ``pg`` tests with the reason; in CI (``CI=true``) it fails them, so a broken CI
setup can never pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from core.schema import Project, load_project

ROOT = Path(__file__).resolve().parent.parent
DEMO_SCHEMA = ROOT / "hubserver" / "data" / "demo-schema.toml"  # package data
DEMO_DATA = ROOT / "hubserver" / "data" / "demo-data.json"

PG_ENV = "OUTPOST_TEST_PG_URL"


# No Hypothesis deadline: its 200 ms per example is a timed assertion (tests/hub/test_recent
# failed with "Unreliable test timings" at load 9-14 in a full run). Each test's own settings
# (max_examples, ...) still apply over this profile; pytest-timeout still bounds a hang.
settings.register_profile("outpost", deadline=None)
settings.load_profile("outpost")


LAYOUT_ENV = "OUTPOST_TEST_LAYOUT"
"""``by-id`` or ``rev-index``: the SQLite layout this test process makes new ledgers in
(``SqlLedger``'s ``layout`` default; docs/ledger.md, "SQLite layout"), to run a test
directory over an older layout: ``OUTPOST_TEST_LAYOUT=by-id pytest tests/hub``. Unset: the
default (``by-record``). Hubs started as child processes (``outpost-hub serve``) make the
default layout either way; a satellite's replica is ``by-id`` either way."""


def pytest_configure(config: pytest.Config) -> None:
    """Child processes keep Python's bytecode cache. The suite starts several hundred Python
    processes (the headless CLI, ``outpost-hub serve``, the satellite driver: about 0.5 s of
    CPU each, most of it imports); with ``PYTHONDONTWRITEBYTECODE`` set in the environment
    each of them compiled the project's modules again (about 0.1 s of CPU each). The children
    write ``__pycache__`` beside the sources, as Python does by default (ignored by git).

    :data:`LAYOUT_ENV` sets the layout of the new SQLite ledgers this process makes."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    layout = os.environ.get(LAYOUT_ENV, "")
    if layout:
        from core.ledger.sql import LAYOUTS, SqlLedger

        if layout not in LAYOUTS:
            raise pytest.UsageError(f"{LAYOUT_ENV}={layout!r}: expected one of "
                                    f"{', '.join(LAYOUTS)}")
        defaults = SqlLedger.__init__.__kwdefaults__
        assert defaults is not None
        defaults["layout"] = layout


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def project() -> Project:
    """The demo project (``hubserver/data/demo-schema.toml``): topics field.site and field.obs."""
    return load_project(DEMO_SCHEMA)


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of a PostgreSQL server the tests may create databases on."""
    url = os.environ.get(PG_ENV, "")
    if url:
        return url
    reason = (
        f"{PG_ENV} is not set: run `make test` (starts a throwaway cluster when PostgreSQL is "
        "installed) or `scripts/pg-test-cluster start` and export the URL it prints"
    )
    if in_ci():
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def _with_db(url: str, db: str) -> str:
    """``url`` pointing at database ``db`` instead of the one it names."""
    base, _, tail = url.rpartition("/")
    query = ""
    if "?" in tail:
        query = "?" + tail.split("?", 1)[1]
    return f"{base}/{db}{query}"


@pytest.fixture
def fresh_pg_db(pg_url: str) -> Iterator[str]:
    """A new, empty, uniquely named database; yields its URL and drops it afterwards."""
    import psycopg

    name = f"outpost_test_{uuid.uuid4().hex[:16]}"
    try:
        admin = psycopg.connect(pg_url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        msg = f"cannot connect to PostgreSQL at {pg_url}: {exc}"
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _with_db(pg_url, name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "pg"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty SQLite file URL or a fresh PostgreSQL database URL (each test runs with both)."""
    if request.param == "pg":
        url: str = request.getfixturevalue("fresh_pg_db")
        return url
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave ``slow`` tests out of a plain run (``make test``, CI); ``make soak`` (``-m slow`` or
    ``OUTPOST_SOAK=1``) selects them. Deselected, never skipped."""
    if ("slow" in (config.getoption("markexpr") or "")
            or os.environ.get("OUTPOST_SOAK", "") not in ("", "0")):
        return
    drop = [it for it in items if it.get_closest_marker("slow")]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [it for it in items if it.get_closest_marker("slow") is None]
