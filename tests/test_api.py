"""The HTTP API through real HTTP (``aiswatch api`` on a free port, httpx):
tokens, answers equal to the CLI's, stable cursors, limits, bad input and
injection attempts that change nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest

from tests.history import ApiServer, aiswatch, api_server, free_port, scenario_url

__all__ = ["api_server", "scenario_url"]

WEEK = {"since": "2024-03-09", "until": "2024-03-16"}


@pytest.fixture(scope="module")
def client(api_server: ApiServer) -> httpx.Client:
    token = api_server.token("tests")
    return httpx.Client(base_url=api_server.base, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def snapshot(url: str) -> tuple[Any, ...]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM positions), (SELECT count(*) FROM events),"
            " (SELECT count(*) FROM vessel_static), (SELECT count(*) FROM watchlist_matches),"
            " (SELECT count(*) FROM api_tokens), (SELECT count(*) FROM pg_tables)"
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_without_a_token_or_with_a_revoked_one_every_route_but_health_is_401(api_server: ApiServer) -> None:
    routes = ["/api/v1/watched/last-positions", "/api/v1/vessels/LADY%20R/voyages", "/api/v1/events",
              "/api/v1/port-calls", "/api/v1/vessels?in=Rajin", "/api/v1/vessels/LADY%20R/track",
              "/api/v1/zones", "/map"]  # fmt: skip
    assert httpx.get(api_server.base + "/health").json() == {"status": "ok", "database": "up"}
    revoked = api_server.token("to-revoke")
    assert (
        httpx.get(api_server.base + routes[0], headers={"Authorization": f"Bearer {revoked}"}).status_code
        == 200
    )
    gone = aiswatch(api_server.url, "api", "token", "revoke", "to-revoke", data_dir=api_server.data_dir)
    assert gone.returncode == 0, gone.stderr
    for route in routes:
        for headers in ({}, {"Authorization": "Bearer aw_nonsense"}, {"Authorization": f"Bearer {revoked}"}):
            answer = httpx.get(api_server.base + route, headers=headers)
            assert answer.status_code == 401, (route, headers)
            assert "token" in answer.json()["detail"]
    listed = aiswatch(api_server.url, "api", "token", "list", data_dir=api_server.data_dir)
    assert "to-revoke" in listed.stdout and revoked not in listed.stdout
    with psycopg.connect(api_server.url) as conn:  # only hashes are kept
        hashes = [bytes(h) for (h,) in conn.execute("SELECT token_hash FROM api_tokens").fetchall()]
    assert all(len(h) == 32 and revoked.encode() not in h for h in hashes)


def test_answers_are_the_clis(client: httpx.Client, api_server: ApiServer) -> None:
    cli = aiswatch(api_server.url, "voyages", "LADY R", "--since", WEEK["since"], "--until", WEEK["until"],
                   "--format", "jsonl", data_dir=api_server.data_dir)  # fmt: skip
    api = client.get("/api/v1/vessels/LADY R/voyages", params=WEEK).json()
    assert api["times"] == "UTC"
    assert api["voyages"] == [json.loads(line) for line in cli.stdout.splitlines()]
    assert [v["dark_h"] for v in api["voyages"]] == [0, 15.62, 0]
    cli = aiswatch(api_server.url, "track", "LADY R", "--since", WEEK["since"], "--until", WEEK["until"],
                   "--format", "jsonl", "--tolerance-m", "300", data_dir=api_server.data_dir)  # fmt: skip
    api_track = client.get(
        "/api/v1/vessels/LADY R/track", params={**WEEK, "format": "jsonl", "tolerance_m": 300}
    )
    assert api_track.headers["content-type"] == "application/x-ndjson"
    assert api_track.text == cli.stdout
    assert any(json.loads(line).get("kind") == "gap" for line in api_track.text.splitlines())
    cli = aiswatch(api_server.url, "vessels", "--in", "Vostochny", "--since", WEEK["since"], "--until",
                   WEEK["until"], "--format", "jsonl", data_dir=api_server.data_dir)  # fmt: skip
    api = client.get("/api/v1/vessels", params={"in": "Vostochny", **WEEK}).json()
    assert api["items"] == [json.loads(line) for line in cli.stdout.splitlines()]
    cli = aiswatch(api_server.url, "port-calls", "--port", "Vostochny", "--format", "jsonl",
                   data_dir=api_server.data_dir)  # fmt: skip
    api = client.get(
        "/api/v1/port-calls", params={"port": "Vostochny", "since": "2024-01", "until": "2024-12"}
    )
    assert [{k: v for k, v in c.items() if k != "id"} for c in api.json()["items"]] == [
        {k: v for k, v in json.loads(line).items() if k != "id"} for line in cli.stdout.splitlines()
    ]
    cli = aiswatch(api_server.url, "vessels", "--watched", "--format", "jsonl", data_dir=api_server.data_dir)
    api = client.get("/api/v1/watched/last-positions").json()
    assert api["items"] == [json.loads(line) for line in cli.stdout.splitlines()]
    position = client.get("/api/v1/vessels/LADY R/position", params={"at": "2024-03-12T12:00Z"}).json()
    cli = aiswatch(api_server.url, "where", "LADY R", "--at", "2024-03-12T12:00Z", "--format", "jsonl",
                   data_dir=api_server.data_dir)  # fmt: skip
    assert position == json.loads(cli.stdout)
    assert (position["before"]["ts"], position["after"]["ts"]) == (
        "2024-03-12T04:11:31Z",
        "2024-03-12T19:48:43Z",
    )


def test_pages_follow_stable_cursors(client: httpx.Client, api_server: ApiServer) -> None:
    every = client.get("/api/v1/events", params={**WEEK, "limit": 1000}).json()["items"]
    assert len(every) > 30
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = client.get(
            "/api/v1/events", params={**WEEK, "limit": 7, **({"cursor": cursor} if cursor else {})}
        )
        body = page.json()
        seen += body["items"]
        if len(seen) == 14:  # an event arrives before the cursor: the next pages neither repeat nor skip
            with psycopg.connect(api_server.url) as conn:
                conn.execute(
                    "INSERT INTO events (id, kind, state, vessel, mmsi, start_ts) VALUES"
                    " ('test-early', 'dark_gap', 'closed', 'LADY R', 273100001, '2024-03-09T01:00Z')"
                )
        cursor = body["next_cursor"]
        if cursor is None:
            break
    with psycopg.connect(api_server.url) as conn:
        conn.execute("DELETE FROM events WHERE id = 'test-early'")
    assert [e["id"] for e in seen] == [e["id"] for e in every]
    vessels = client.get("/api/v1/vessels", params={"in": "Vostochny", **WEEK, "limit": 3}).json()
    rest = client.get("/api/v1/vessels", params={"in": "Vostochny", **WEEK, "cursor": vessels["next_cursor"]})
    everyone = client.get("/api/v1/vessels", params={"in": "Vostochny", **WEEK}).json()["items"]
    assert vessels["items"] + rest.json()["items"] == everyone and len(everyone) == 4


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("/api/v1/events", {"since": "1900", "until": "2100"}, 400, "at most 400 are allowed"),
        ("/api/v1/vessels/LADY R/track", {"since": "2000", "until": "2024"}, 400, "at most 400"),
        ("/api/v1/events", {"since": "2024-03-10", "until": "2024-03-01"}, 400, "must be before until"),
        ("/api/v1/events", {"limit": 100000}, 400, "above the largest page, 1000"),
        ("/api/v1/events", {"limit": 0}, 422, "limit"),
        ("/api/v1/events", {"since": "soon"}, 400, "since/until: 'soon' is not a time"),
        ("/api/v1/events", {"kind": "party"}, 400, "kind: 'party' is not one of"),
        ("/api/v1/events", {"cursor": "bm90IGEgY3Vyc29y"}, 400, "cursor: not a cursor"),
        ("/api/v1/vessels", {"in": "0,0,90,90"}, 400, "at most 100 allowed"),
        ("/api/v1/vessels", {"in": "Atlantis"}, 400, "is not a port"),
        ("/api/v1/vessels", {}, 422, "in"),
        ("/api/v1/vessels/NOBODY/voyages", {}, 404, "no watchlist entry, MMSI, IMO or ship name 'NOBODY'"),
        ("/api/v1/vessels/LADY R/track", {"tolerance_m": -1}, 422, "tolerance_m"),
        ("/api/v1/vessels/LADY R/track", {"format": "pdf"}, 422, "format"),
        ("/api/v1/vessels/LADY R/position", {"at": "99999-01-01"}, 400, "at:"),
    ],
)
def test_absurd_ranges_sizes_and_bad_values_get_a_4xx_that_says_what(
    client: httpx.Client, path: str, params: dict[str, Any], status: int, says: str
) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code == status, answer.text
    assert says in answer.text


INJECTIONS = [
    "'; DROP TABLE positions;--", "1 OR 1=1", "273100001' OR '1'='1", "\x00", "../../../etc/passwd",
    "<script>alert(1)</script>", "%", "_", "LADY R'--", "9161003; DELETE FROM events", "\u202e\ufffd", "{}",
    '{"type": "Polygon", "coordinates": "x"}', "POLYGON((0 0, 1 1, 0 0))",
]  # fmt: skip


PARAMETERS = [
    ("/api/v1/events", "vessel"), ("/api/v1/events", "port"), ("/api/v1/events", "since"),
    ("/api/v1/events", "until"), ("/api/v1/events", "kind"), ("/api/v1/events", "cursor"),
    ("/api/v1/events", "limit"), ("/api/v1/port-calls", "port"), ("/api/v1/port-calls", "vessel"),
    ("/api/v1/vessels", "in"), ("/api/v1/vessels", "since"), ("/api/v1/vessels/LADY R/voyages", "since"),
    ("/api/v1/vessels/LADY R/track", "until"), ("/api/v1/vessels/LADY R/track", "format"),
    ("/api/v1/vessels/LADY R/track", "tolerance_m"), ("/api/v1/vessels/LADY R/position", "at"),
]  # fmt: skip


def test_injection_attempts_in_every_parameter_change_nothing(
    client: httpx.Client, api_server: ApiServer
) -> None:
    before = snapshot(api_server.url)
    for bad in INJECTIONS:
        for path, name in PARAMETERS:
            answer = client.get(
                path, params={name: bad, **({"in": "Rajin"} if name != "in" and "vessels?" in path else {})}
            )
            assert answer.status_code < 500, (path, name, bad, answer.text)
        for path in (
            "/api/v1/vessels/{}/voyages",
            "/api/v1/vessels/{}/track",
            "/api/v1/vessels/{}/position?at=now",
        ):
            answer = client.get(path.format(quote(bad, safe="")))
            assert answer.status_code in (200, 400, 404, 422), (path, bad, answer.text)
        answer = httpx.get(
            api_server.base + "/api/v1/events", headers={"Authorization": "Bearer " + quote(bad)}
        )
        assert answer.status_code == 401
    assert snapshot(api_server.url) == before


def test_the_openapi_document_describes_every_route(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    assert {"/api/v1/vessels/{vessel}/track", "/api/v1/vessels/{vessel}/voyages", "/api/v1/events",
            "/api/v1/port-calls", "/api/v1/vessels", "/api/v1/watched/last-positions", "/health",
            "/api/v1/zones"} <= set(doc["paths"])  # fmt: skip


def test_aiswatch_run_serves_the_api_beside_ingest(api_server: ApiServer, tmp_path: Path) -> None:
    (tmp_path / "feed.nmea").touch()
    (tmp_path / "run.toml").write_text(
        f"[api]\nserve_with_run = true\nport = {(port := free_port())}\n[service]\nhttp_port = 0\n"
        f'[[sources]]\nkind = "file"\nname = "feed"\npath = "{tmp_path / "feed.nmea"}"\nfollow = true\n'
    )
    token = api_server.token("beside-ingest")
    env = {**os.environ, "AISWATCH_DATABASE_URL": api_server.url, "AISWATCH_DATA_DIR": str(tmp_path),
           "AISWATCH_STORAGE__TIMESCALEDB": "off"}  # fmt: skip
    service = subprocess.Popen(
        [sys.executable, "-m", "aiswatch", "run", "--config", str(tmp_path / "run.toml")], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        for _ in range(150):
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/watched/last-positions",
                                   headers={"Authorization": f"Bearer {token}"})  # fmt: skip
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert answer.status_code == 200
        assert {p["vessel"] for p in answer.json()["items"]} == {"LADY R", "ANGARA", "MARIA", "MAIA-1"}
    finally:
        service.send_signal(signal.SIGTERM)
        output, _ = service.communicate(timeout=60)
    assert service.returncode == 0, output
