"""Running the pure detector engine in tests: lines through the real
decoder, records through the engine, with an in-memory list as the engine's
history (the database plays that part in the integration tests)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from detectors.engine import DetectorEngine
from detectors.rules import DetectorRules
from detectors.watchlist import Identifier, Watchlist, WatchlistEntry, load_watchlist
from detectors.zones import PortZones, load_zones
from ingest.pipeline import LineDecoder
from ingest.records import Event, Position, StaticReport

Record = Position | StaticReport


def decode(
    lines: Iterable[str | bytes], received: float | None = None
) -> tuple[list[Position], list[StaticReport]]:
    """Lines through the real (pure) ingest logic; lines without a time take ``received``."""
    received = time.time() if received is None else received
    decoder = LineDecoder("test", dedup_window_s=0)
    decoder.feed([line.encode() if isinstance(line, str) else line for line in lines], received)
    decoder.close()
    return decoder.take()


def mmsi_watchlist(mmsis: Iterable[int], name: str = "WATCHED") -> Watchlist:
    return Watchlist(
        [
            WatchlistEntry(f"{name} {m}", identifiers=(Identifier("mmsi", str(m), "test", "high"),))
            for m in sorted(set(mmsis))
        ]
    )


class Run:
    """An engine and the store it would have: every batch's changes are
    'committed' at once; history requests are answered from what was fed."""

    def __init__(
        self,
        watchlist: Watchlist | None = None,
        zones: PortZones | None = None,
        rules: DetectorRules | None = None,
        *,
        lateness_s: float = 300.0,
    ) -> None:
        self._config = (watchlist or load_watchlist(), zones or load_zones(), rules, lateness_s)
        self.engine = self._new_engine()
        self.stored: dict[tuple[int, datetime, int], Record] = {}
        self.revisions: list[Event] = []

    def _new_engine(self) -> DetectorEngine:
        watchlist, zones, rules, lateness_s = self._config
        return DetectorEngine(watchlist, zones, rules, allowed_lateness_s=lateness_s)

    def restart(self) -> None:
        """A new process: the engine starts from what was stored and committed,
        as aiswatch.detection does from the database."""
        old, self.engine = self.engine, self._new_engine()
        self.engine.watermark = old.watermark
        self.engine.load_committed(old.committed.values())
        for record in sorted(self.stored.values(), key=lambda r: r.ts):
            if isinstance(record, StaticReport):
                self.engine.consider(record)
        self.engine.restart()

    def batch(
        self, positions: Sequence[Position], statics: Sequence[StaticReport] = (), now: datetime | None = None
    ) -> list[Event]:
        new = [p for p in positions if (p.mmsi, p.ts, p.payload_crc) not in self.stored]
        for record in [*positions, *statics]:
            self.stored.setdefault((record.mmsi, record.ts, getattr(record, "payload_crc", -1)), record)
        engine = self.engine
        engine.observe(new, statics)
        engine.advance(now)
        return self._settle()

    def finish(self) -> list[Event]:
        self.engine.finish()
        return self._settle()

    def _settle(self) -> list[Event]:
        engine = self.engine
        for mmsi, since in engine.needs_history().items():
            history = sorted(
                (r for r in self.stored.values() if r.mmsi == mmsi and (since is None or r.ts >= since)),
                key=lambda r: (r.ts, isinstance(r, Position)),
            )
            engine.rebuild(mmsi, history, truncated_at=None)
        changes = engine.changes()
        engine.committed_events(changes)
        self.revisions += changes
        return changes

    def events(self, *, withdrawn: bool = False) -> dict[str, Event]:
        return {i: e for i, e in self.engine.committed.items() if withdrawn or e.state != "withdrawn"}


def replay(
    positions: Sequence[Position],
    statics: Sequence[StaticReport] = (),
    *,
    batch: int = 500,
    shuffle_seed: int | None = None,
    **kwargs: object,
) -> Run:
    """Feed records in event-time order (or shuffled within each batch) in batches."""
    records: list[Record] = sorted([*positions, *statics], key=lambda r: r.ts)
    run = Run(**kwargs)  # type: ignore[arg-type]
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        if shuffle_seed is not None:
            random.Random(shuffle_seed + start).shuffle(chunk)
        run.batch(
            [r for r in chunk if isinstance(r, Position)], [r for r in chunk if isinstance(r, StaticReport)]
        )
    run.finish()
    return run


def scenario_lines(tmp: Path) -> list[str]:
    from aiswatch.scenario import write_scenario

    path = tmp / "scenario.nmea"
    write_scenario(path)
    return path.read_text().splitlines()


def summary(events: Iterable[Event]) -> list[tuple[str, str, str | None, str]]:
    """(vessel, kind, port, state) of each event, sorted: what an analyst reads."""
    return sorted((e.vessel, e.kind, e.port, e.state) for e in events)
