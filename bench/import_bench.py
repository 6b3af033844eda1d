"""Benchmark: a CSV archive into PostgreSQL, against PostgreSQL's own COPY.

Builds a DMA aisdk file from the real 10,001-row sample repeated ``--copies``
times, each copy a day later (distinct data), and measures in one run on one
machine:

* ``COPY plain FROM STDIN (FORMAT csv, HEADER)`` of the same file into a plain
  table of text columns, no index: the limit for getting rows in;
* ``aiswatch import`` of the file into a fresh migrated database (parse, the
  identity history, the key index, the line ledger), rows per second;
* their ratio (goal: at least 0.5).

Usage: ``bench/import [--copies N] [--database-url URL]``; results go to
stdout and to bench/results/import.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from aiswatch.archive import import_paths
from aiswatch.config import Settings
from aiswatch.service import open_database
from storage.admin import create_database, drop_database

REPO = Path(__file__).resolve().parents[1]
SAMPLE = (
    Path(os.environ.get("AISWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
    / "csv/dma_aisdk_20220917_10k_rows.csv"
)
LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def write_copies(path: Path, copies: int) -> int:
    header, *rows = SAMPLE.read_text().splitlines()
    n = 0
    with path.open("w") as out:
        out.write(header + "\n")
        for k in range(copies):
            for row in rows:
                _index, stamp, rest = row.split(",", 2)
                ts = datetime.strptime(stamp, "%d/%m/%Y %H:%M:%S") + timedelta(days=k)
                out.write(f"{n},{ts:%d/%m/%Y %H:%M:%S},{rest}\n")
                n += 1
    return n


def copy_plain(url: str, path: Path) -> float:
    header = SAMPLE.read_text().splitlines()[0].split(",")
    columns = ", ".join(f"c{i} text" for i in range(len(header)))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE plain ({columns})")
        began = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("COPY plain FROM STDIN (FORMAT csv, HEADER)") as copy,
            path.open("rb") as handle,
        ):
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        return time.perf_counter() - began


async def aiswatch_import(url: str, path: Path, data_dir: Path) -> tuple[float, int]:
    settings = Settings(database_url=url, data_dir=data_dir)  # type: ignore[arg-type]
    settings.detectors.enabled = False
    settings.storage.timescaledb = "off"
    async with open_database(settings) as db:
        began = time.perf_counter()
        (stats,) = await import_paths(settings, [str(path)], db)
        return time.perf_counter() - began, stats.stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--database-url", default=LOCAL_URL)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aiswatch-bench-") as tmp:
        path = Path(tmp) / "aisdk.csv"
        rows = write_copies(path, args.copies)
        names = [f"aiswatch_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
        try:
            copy_s = copy_plain(create_database(args.database_url, names[0]), path)
            import_s, stored = asyncio.run(
                aiswatch_import(create_database(args.database_url, names[1]), path, Path(tmp))
            )
        finally:
            for name in names:
                drop_database(args.database_url, name)
    result = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores,"
        f" Python {platform.python_version()}",
        "rows": rows,
        "copy_rows_per_s": round(rows / copy_s),
        "import_rows_per_s": round(rows / import_s),
        "stored_lines": stored,
        "ratio": round(copy_s / import_s, 3),
        "goal": 0.5,
    }
    print(json.dumps(result, indent=2))
    (REPO / "bench" / "results" / "import.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
