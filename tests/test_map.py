"""The map page in headless Chromium (Debian's, driven by Playwright): it
renders the port zones and a track with a dashed gap, asks nothing of any
machine but this one, and leaves a screenshot (tests/artifacts/map.png)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.history import REPO, ApiServer, api_server, scenario_url

__all__ = ["api_server", "scenario_url"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
ARTIFACTS = REPO / "tests" / "artifacts"


@pytest.fixture(scope="module")
def browser() -> Any:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM} (scripts/test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def load(browser: Any, url: str, shot: str) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / shot))
    return page, requests


def test_the_map_shows_zones_and_a_track_with_a_dashed_gap_and_stays_on_this_machine(
    browser: Any, api_server: ApiServer
) -> None:
    token = api_server.token("map")
    page, requests = load(
        browser,
        f"{api_server.base}/map?token={token}&vessel=LADY%20R&since=2024-03-09&until=2024-03-16",
        "map.png",
    )
    assert (
        page.url == f"{api_server.base}/map?vessel=LADY+R&since=2024-03-09&until=2024-03-16"
    )  # token dropped
    assert "LADY R:" in page.inner_text("#status") and "events" in page.inner_text("#status")
    assert len(page.query_selector_all("path.zone")) == 6  # berth and approach of three ports
    assert len(page.query_selector_all("path.track")) >= 2  # before and after the dark leg
    (gap,) = page.query_selector_all("path.gap")
    assert gap.get_attribute("stroke-dasharray") == "6 6"
    assert len(page.query_selector_all("path.gap-start")) == len(page.query_selector_all("path.gap-end")) == 1
    assert len(page.query_selector_all("path.watched")) == 5
    assert "dark gap" in page.inner_text("#events") and "port call" in page.inner_text("#events")
    assert requests and {urlsplit(u).netloc for u in requests} == {f"127.0.0.1:{api_server.port}"}
    page.close()


def test_without_a_token_the_map_page_is_refused(browser: Any, api_server: ApiServer) -> None:
    page = browser.new_page()
    answer = page.goto(f"{api_server.base}/map")
    assert answer is not None and answer.status == 401
    page.close()


def test_the_demo_s_static_copy_works_from_disk(browser: Any, api_server: ApiServer, tmp_path: Path) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from aiswatch.config import Settings
    from aiswatch.service import open_database
    from aiswatch.static_map import write_static_map

    settings = Settings(database_url=api_server.url, data_dir=tmp_path)  # type: ignore[arg-type]

    async def write() -> Path:
        async with open_database(settings, migrate=False) as db:
            return await write_static_map(
                db, settings, tmp_path / "map", "LADY R", "2024-03-09", "2024-03-16"
            )

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's event loop
        index = pool.submit(asyncio.run, write()).result()
    page, requests = load(browser, index.as_uri(), "map-static.png")
    assert len(page.query_selector_all("path.zone")) == 6
    assert len(page.query_selector_all("path.gap")) == 1
    assert all(u.startswith("file://") for u in requests)
    page.close()
