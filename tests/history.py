"""A database holding the synthetic scenario with the detectors' events, made
once per test session (history tests only read it), and the CLI as a
subprocess on it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiswatch.config import Settings
from aiswatch.service import ingest_paths, new_detection, open_database
from storage.admin import create_database, drop_database

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def scenario_url(
    pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    from aiswatch.scenario import write_scenario

    name = f"aiswatch_hist_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_admin_url, name, template=template_db)
    tmp = tmp_path_factory.mktemp("scenario")
    write_scenario(tmp / "scenario.nmea")
    settings = Settings(database_url=url, data_dir=tmp)  # type: ignore[arg-type]

    async def load() -> None:
        async with open_database(settings) as db:
            await ingest_paths(settings, [str(tmp / "scenario.nmea")], db, detection=new_detection(settings))

    asyncio.run(load())
    yield url
    drop_database(pg_admin_url, name)


def aiswatch(url: str, *args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AISWATCH_DATABASE_URL": url,
        "AISWATCH_STORAGE__TIMESCALEDB": "off",
        "AISWATCH_DATA_DIR": str(data_dir or REPO / ".pytest-data"),
    }
    return subprocess.run(
        [sys.executable, "-m", "aiswatch", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiServer:
    """``aiswatch api`` as a subprocess on a free port, over ``url``."""

    def __init__(self, url: str, data_dir: Path) -> None:
        import time

        import httpx

        self.url, self.data_dir = url, data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "AISWATCH_DATABASE_URL": url, "AISWATCH_DATA_DIR": str(data_dir),
               "AISWATCH_STORAGE__TIMESCALEDB": "off"}  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aiswatch", "api", "--port", str(self.port)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"aiswatch api exited: {self.process.stdout.read() if self.process.stdout else ''}"
                )
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("aiswatch api did not answer /health within 60 s")

    def token(self, name: str) -> str:
        made = aiswatch(self.url, "api", "token", "create", name, data_dir=self.data_dir)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def api_server(scenario_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    server = ApiServer(scenario_url, tmp_path_factory.mktemp("api"))
    yield server
    server.stop()
