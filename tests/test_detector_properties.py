"""Properties of the detectors over the synthetic scenario: the events depend
on the messages, not on how they arrived (replayed twice, shuffled within the
allowed lateness, cut by a restart)."""

from __future__ import annotations

import random
from datetime import timedelta
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.records import Position, StaticReport
from tests.detecting import Run, decode, replay, scenario_lines

LATENESS_S = 300.0
Records = tuple[list[Position], list[StaticReport]]


@cache
def scenario(tmp: str = "/tmp/aiswatch-property-scenario") -> Records:
    Path(tmp).mkdir(exist_ok=True)
    return decode(scenario_lines(Path(tmp)))


@cache
def in_order() -> dict[str, object]:
    positions, statics = scenario()
    return replay(positions, statics, batch=500).events()  # type: ignore[return-value]


def feed(run: Run, records: list[Position | StaticReport], batch: int) -> None:
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        run.batch(
            [r for r in chunk if isinstance(r, Position)], [r for r in chunk if isinstance(r, StaticReport)]
        )


SLOW = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(20, 3000), fraction=st.floats(0.0, 1.0))
def test_messages_shuffled_within_the_lateness_give_the_same_events(
    seed: int, batch: int, fraction: float
) -> None:
    """Each message may arrive up to the allowed lateness after later ones."""
    positions, statics = scenario()
    rng = random.Random(seed)
    jitter = timedelta(seconds=LATENESS_S * fraction)
    records = sorted([*positions, *statics], key=lambda r: r.ts + rng.random() * jitter)
    run = Run(lateness_s=LATENESS_S)
    feed(run, records, batch)
    run.finish()
    assert run.events() == in_order()
    assert run.engine.counts["rebuilds"] == 5  # one per vessel that becomes watched; none for lateness


@SLOW
@given(batch=st.integers(50, 5000))
def test_the_same_messages_twice_give_the_same_events_and_write_nothing_new(batch: int) -> None:
    positions, statics = scenario()
    run = replay(positions, statics, batch=batch)
    assert run.events() == in_order()
    written = len(run.revisions)
    feed(run, sorted([*positions, *statics], key=lambda r: r.ts), batch)
    run.finish()
    assert run.events() == in_order() and len(run.revisions) == written


@SLOW
@given(cut=st.floats(0.05, 0.95), batch=st.integers(100, 3000))
def test_a_restart_anywhere_gives_the_events_of_one_run(cut: float, batch: int) -> None:
    positions, statics = scenario()
    records = sorted([*positions, *statics], key=lambda r: r.ts)
    at = int(len(records) * cut)
    run = Run(lateness_s=LATENESS_S)
    feed(run, records[:at], batch)
    run.restart()
    feed(run, records[at:], batch)
    run.finish()
    assert run.events() == in_order()
