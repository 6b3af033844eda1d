"""Human-readable summaries of ingest runs (the CLI's output)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from aiswatch.detection import Detection
from ingest.pipeline import IngestStats
from storage.queries import VesselSummary


def _reasons(counter: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n:,}" for reason, n in sorted(counter.items(), key=lambda kv: -kv[1]))


def render_stats(stats: IngestStats, *, elapsed_s: float | None = None) -> str:
    lines = [f"{stats.source}"]
    if stats.errors:
        lines += [f"  ERROR: {error}" for error in stats.errors]
    rate = f" in {elapsed_s:.1f} s ({stats.lines / elapsed_s:,.0f} lines/s)" if elapsed_s else ""
    lines.append(f"  lines read        {stats.lines:>10,}{rate}")
    lines.append(f"    stored          {stats.stored:>10,}")
    # ``untimed``: lines with no event time of their own, stamped with the time they were read.
    # A replay stamps them anew, so the database cannot recognise them: they are stored again.
    if untimed := stats.untimed:
        lines.append(
            f"      untimed       {untimed:>10,}  (no event time of their own: a replay stores them again)"
        )
    lines.append(f"    already stored  {stats.already_stored:>10,}  (replayed: in the database before)")
    lines.append(f"    duplicate       {stats.duplicate:>10,}  (same message within the window)")
    lines.append(f"    filtered        {sum(stats.filtered.values()):>10,}  {_reasons(stats.filtered)}")
    lines.append(f"    malformed       {sum(stats.malformed.values()):>10,}  {_reasons(stats.malformed)}")
    if stats.pending:
        lines.append(f"    NOT RESOLVED    {stats.pending:>10,}  (the database write did not complete)")
    types = ", ".join(f"{t}: {n:,}" for t, n in sorted(stats.messages_by_type.items()))
    lines.append(f"  messages by type  {types}")
    lines.append(
        f"  positions stored  {stats.positions_stored:,};  static reports {stats.static_reports:,}"
        f" ({stats.identity_changes:,} identity changes recorded)"
    )
    for reason, examples in sorted(stats.examples.items()):
        where = "; ".join(f"line {n}" + (f": {d}" if d else "") for n, d in examples)
        lines.append(f"  first {reason}: {where}")
    return "\n".join(lines)


def render_total(results: Sequence[IngestStats]) -> str:
    total = IngestStats("total")
    for stats in results:
        total.merge(stats)
    return render_stats(total)


def render_vessels(vessels: Sequence[VesselSummary]) -> str:
    head = (
        f"{'MMSI':>10}  {'name':<22} {'IMO':>8} {'call':<8} {'type':>4} {'fixes':>6}"
        "  last position (lat, lon) at"
    )
    rows = [head]
    for v in vessels:
        where = (
            f"{v.lat:9.5f} {v.lon:10.5f}"
            if v.lat is not None and v.lon is not None
            else f"{'-':>9} {'-':>10}"
        )
        rows.append(
            f"{v.mmsi:>10}  {(v.shipname or '-'):<22.22} {(v.imo or '-')!s:>8} {(v.callsign or '-'):<8} "
            f"{(v.ship_type or '-')!s:>4} {v.positions:>6}  {where} {v.last_seen:%Y-%m-%d %H:%M:%S}Z"
        )
    return "\n".join(rows)


def render_detection(detection: Detection) -> str:
    if detection.deferred:
        return "detectors: another aiswatch instance is the detector leader here; it detects these records"
    engine = detection.engine
    counts = ", ".join(f"{k.replace('_', ' ')} {n:,}" for k, n in sorted(engine.counts.items()))
    ignored: dict[str, int] = {}
    for w in engine.watched.values():
        for reason, n in w.track.counts.items():
            ignored[reason] = ignored.get(reason, 0) + n
    lines = [
        f"detectors: {len(engine.watched):,} vessels watched;"
        f" {detection.events_written:,} event revisions written",
    ]
    if counts:
        lines.append(f"  {counts}")
    if engine.counts["rebuilds_from_window"]:
        lines.append(
            f"  {engine.counts['rebuilds_from_window']:,} tracks rebuilt from a window of"
            f" {engine.history / timedelta(days=1):g} days (detectors.history_days):"
            " their older records were not examined"
        )
    if ignored:
        lines.append("  positions of watched vessels ignored: " + _reasons(ignored))
    return "\n".join(lines)
