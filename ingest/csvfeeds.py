"""AIS archives in CSV, turned into records. Pure.

Three layouts are known, told apart by their header line (or named):

* ``marinecadastre``: NOAA/BOEM MarineCadastre (``MMSI,BaseDateTime,LAT,LON,SOG,COG,Heading,
  VesselName,IMO,CallSign,VesselType,Status,Length,Width,Draft,Cargo,TransceiverClass``);
* ``dma``: the Danish Maritime Authority's aisdk files (``# Timestamp,Type of mobile,MMSI,...``,
  day-first times, statuses and ship types as words);
* ``kystverket``: the Norwegian Coastal Administration's ``;``-separated exports
  (``mmsi;imo_nr;length;date_time_utc;lon;lat;sog;cog;true_heading;nav_status;message_nr``).

Columns are found by name, so extra columns (a pandas index written in front)
and other orders do not matter. :class:`CsvDecoder` keeps the ledger of
:class:`~ingest.pipeline.IngestStats` for every line: the header and blank
lines are filtered, a row repeated within the file is a duplicate, rows of
base stations and aids to navigation are filtered (``type_not_stored``), a
row that cannot be read is malformed with its reason and line number, every
other row is one position. Static fields (IMO, call sign, name, type,
draught, destination, ETA, dimensions) become a
:class:`~ingest.records.StaticReport` when they differ from the last ones of
the same MMSI in this file; its line is accounted with the row's position
(``sentences=0``), as a type 19 message's is. "Not available" values become
``None`` (lat 91, lon 181, speed 102.3, course 360, heading 511, draught 0,
IMO 0, type 0), as in :mod:`ingest.jsonfeeds`. A row's ``payload_crc`` is the
CRC-32 of the fields read, so replaying an archive stores nothing twice.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from operator import itemgetter
from typing import Final, TypeVar
from zlib import crc32

import numpy as np

from ingest import csvcolumns
from ingest.batch import MISSING, PositionBatch
from ingest.jsonfeeds import _na
from ingest.pipeline import MAX_FUTURE_S, IngestStats
from ingest.records import POSITION_TYPES, Position, StaticReport

#: Per-MMSI identities remembered to emit static reports only on change.
MAX_IDENTITIES: Final = 100_000
#: Rows remembered to count a row repeated in the file as a duplicate.
MAX_SEEN_ROWS: Final = 200_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)
T = TypeVar("T")


class CsvFormat(StrEnum):
    marinecadastre = "marinecadastre"
    dma = "dma"
    kystverket = "kystverket"


@dataclass(frozen=True)
class Layout:
    """Where a format keeps each field: record field name to column name."""

    delimiter: str
    columns: dict[str, str]
    #: The columns whose presence in a header tells this format.
    signature: frozenset[str]


LAYOUTS: Final[dict[CsvFormat, Layout]] = {
    CsvFormat.marinecadastre: Layout(
        ",",
        {
            "mmsi": "MMSI", "ts": "BaseDateTime", "lat": "LAT", "lon": "LON", "speed": "SOG",
            "course": "COG", "heading": "Heading", "shipname": "VesselName", "imo": "IMO",
            "callsign": "CallSign", "ship_type": "VesselType", "status": "Status", "draught": "Draft",
            "class": "TransceiverClass",
        },
        frozenset({"MMSI", "BaseDateTime", "LAT", "LON"}),
    ),
    CsvFormat.dma: Layout(
        ",",
        {
            "ts": "# Timestamp", "class": "Type of mobile", "mmsi": "MMSI", "lat": "Latitude",
            "lon": "Longitude", "status": "Navigational status", "turn": "ROT", "speed": "SOG",
            "course": "COG", "heading": "Heading", "imo": "IMO", "callsign": "Callsign", "shipname": "Name",
            "ship_type": "Ship type", "draught": "Draught", "destination": "Destination", "eta": "ETA",
            "to_bow": "A", "to_stern": "B", "to_port": "C", "to_starboard": "D",
        },
        frozenset({"# Timestamp", "Type of mobile", "MMSI", "Latitude", "Longitude"}),
    ),
    CsvFormat.kystverket: Layout(
        ";",
        {
            "mmsi": "mmsi", "imo": "imo_nr", "ts": "date_time_utc", "lon": "lon", "lat": "lat",
            "speed": "sog", "course": "cog", "heading": "true_heading", "status": "nav_status",
            "msg_type": "message_nr",
        },
        frozenset({"mmsi", "date_time_utc", "lon", "lat"}),
    ),
}  # fmt: skip

#: AIS message type by transceiver class ("Type of mobile", TransceiverClass).
_CLASS_TYPES: Final = {
    "class a": 1, "a": 1, "class b": 18, "b": 18, "base station": 4, "aton": 21, "sar airborne": 9,
}  # fmt: skip
#: DMA's navigational statuses in words (ITU-R M.1371 codes).
_STATUSES: Final = {
    "under way using engine": 0, "at anchor": 1, "not under command": 2,
    "restricted maneuverability": 3, "restricted manoeuverability": 3, "constrained by her draught": 4,
    "moored": 5, "aground": 6, "engaged in fishing": 7, "under way sailing": 8,
    "reserved for future amendment [hsc]": 9, "reserved for future amendment [wig]": 10,
    "power-driven vessel towing astern": 11, "power-driven vessel pushing ahead or towing alongside": 12,
    "reserved for future use": 13, "ais-sart is active": 14,
}  # fmt: skip
#: DMA's ship types in words, as the first code of their range.
_SHIP_TYPES: Final = {
    "wig": 20, "fishing": 30, "towing": 31, "towing long/wide": 32, "dredging": 33, "diving": 34,
    "military": 35, "sailing": 36, "pleasure": 37, "hsc": 40, "pilot": 50, "sar": 51, "tug": 52,
    "port tender": 53, "anti-pollution": 54, "law enforcement": 55, "medical": 58,
    "not party to conflict": 59, "passenger": 60, "cargo": 70, "tanker": 80, "other": 90,
}  # fmt: skip
_NOT_AVAILABLE: Final = frozenset({"", "unknown", "unknown value", "undefined", "nan", "none", "null"})


_STATIC_CELLS: Final = (
    "imo", "callsign", "shipname", "ship_type", "to_bow", "to_stern", "to_port", "to_starboard",
    "draught", "destination", "eta",
)  # fmt: skip
#: imo, callsign, shipname, ship_type, to_bow, to_stern, to_port, to_starboard, draught, destination, eta
_Identity = tuple[
    int | None,
    str | None,
    str | None,
    int | None,
    int | None,
    int | None,
    int | None,
    int | None,
    float | None,
    str | None,
    datetime | None,
]


class RowError(ValueError):
    """A row that cannot be read: ``reason`` for the ledger, the text for people."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def detect_format(header: str) -> CsvFormat | None:
    """The format whose signature columns the header line has, or None."""
    for fmt, layout in LAYOUTS.items():
        names = {name.strip() for name in next(csv.reader([header], delimiter=layout.delimiter))}
        if layout.signature <= names:
            return fmt
    return None


def _text(value: str) -> str | None:
    value = value.strip().strip("@").strip()
    return None if value.lower() in _NOT_AVAILABLE else value


def _float(value: str, column: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        if value.strip().lower() in _NOT_AVAILABLE:
            return None
        raise RowError("number", f"{column}: {value[:40]!r} is not a number") from None
    return None if math.isnan(number) else number


def _measure(value: str, column: str, missing: float) -> float | None:
    """A number whose "not available" code is ``missing`` (or more): None for it."""
    number = _float(value, column)
    return None if number is None else _na(number, missing)


def _int(value: str, column: str) -> int | None:
    number = _float(value, column)
    if number is not None and math.isinf(number):
        raise RowError("number", f"{column}: {value[:40]!r} is not a whole number")
    return None if number is None else int(number)


def _small_int(value: str, column: str) -> int | None:
    """A whole number for a ``smallint`` column (heading, status)."""
    number = _int(value, column)
    if number is not None and not -(1 << 15) <= number < 1 << 15:
        raise RowError("number", f"{column}: {value[:40]!r} is out of range")
    return number


def _lenient(read: Callable[[str, str], T], value: str, column: str) -> T | None:
    """``read(value, column)``, or None where it cannot be read."""
    try:
        return read(value, column)
    except RowError:
        return None


def _iso_time(value: str) -> datetime:
    ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _day_first_time(value: str) -> datetime:
    """``dd/mm/yyyy HH:MM:SS`` (DMA)."""
    s = value.strip()
    if len(s) != 19 or s[2] != "/" or s[5] != "/":
        raise ValueError(s)
    return datetime(
        int(s[6:10]), int(s[3:5]), int(s[0:2]), int(s[11:13]), int(s[14:16]), int(s[17:19]), tzinfo=UTC
    )


class CsvDecoder:
    """The import logic of one CSV file. Feed lines, take records.

    ``received`` (UNIX seconds) is the caller's clock, used only to reject
    event times more than a day in the future. ``fmt`` None means: tell the
    format from the header line.
    """

    def __init__(self, source: str, fmt: CsvFormat | None = None, *, by_columns: bool = True) -> None:
        self.stats = IngestStats(source)
        #: False: every row read one at a time (:meth:`_row`), the reference the columns are held to.
        self.by_columns = by_columns
        self.format = fmt
        self._index: dict[str, int] = {}
        self._width = 0
        self._parse_time: Callable[[str], datetime] = _iso_time
        self._last_time: tuple[str, datetime] = ("", datetime.min.replace(tzinfo=UTC))
        self._identities: dict[int, tuple[str, ...]] = {}
        self._seen: dict[tuple[int, datetime, int], None] = {}
        #: Positions read row by row (moved into the chunk's batch at its end).
        self._positions: list[Position] = []
        self._batches: list[PositionBatch] = []
        self._statics: list[StaticReport] = []
        self._lineno = 0

    def feed(self, lines: Iterable[bytes], received: float) -> None:
        stats = self.stats
        latest = datetime.fromtimestamp(received + MAX_FUTURE_S, UTC)
        rows: list[tuple[int, str]] = []  # (line number, line): read together, below
        for raw in lines:
            self._lineno += 1
            stats.lines += 1
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                stats.note_malformed("encoding", 1, self._lineno, "not UTF-8")
                continue
            if not line.strip():
                stats.filtered["blank"] += 1
            elif not self._index:
                self._header(line)
            else:
                rows.append((self._lineno, line))
        if rows:
            self._rows(rows, latest)

    def _rows(self, rows: list[tuple[int, str]], latest: datetime) -> None:
        """Read ``rows`` in their order: the columns of the rows of full width
        at once (:mod:`ingest.csvcolumns`), the rows that does not vouch
        for one at a time by :meth:`_row`, which says what is wrong."""
        stats = self.stats
        cells = [line.split(self._delimiter) for _, line in rows]
        whole = [i for i, (row, (_, line)) in enumerate(zip(cells, rows, strict=True))
                 if len(row) == self._width and '"' not in line]  # fmt: skip
        at = [-1] * len(rows)  # each row's place among the rows of full width
        for j, i in enumerate(whole):
            at[i] = j
        fast = _Columns(self, [cells[i] for i in whole], latest) if whole and self.by_columns else None
        accepted: list[int] = []
        slow_before = len(self._positions)
        order: list[bool] = []  # for each position of these rows: read by columns?
        seen, identities, cells_of = self._seen, self._identities, self._static_cells
        for i, (lineno, line) in enumerate(rows):
            j = at[i]
            if fast is None or j < 0 or not fast.good[j]:
                before = len(self._positions)
                try:
                    self._row(line, latest)
                except RowError as exc:
                    stats.note_malformed(exc.reason, 1, lineno, str(exc))
                order.extend([False] * (len(self._positions) - before))
                continue
            msg_type = fast.types[j]
            stats.messages_by_type[msg_type] += 1
            if msg_type not in POSITION_TYPES:
                stats.filtered["type_not_stored"] += 1
                continue
            mmsi, ts = fast.mmsis[j], fast.times[j]
            assert ts is not None  # a good row's time was read
            key = (mmsi, ts, fast.crcs[j])
            if key in seen:
                stats.duplicate += 1
                continue
            seen[key] = None
            if len(seen) > MAX_SEEN_ROWS:
                del seen[next(iter(seen))]
            accepted.append(j)
            order.append(True)
            stats.positions += 1
            stats.accepted += 1
            row = cells[i]
            if identities.get(mmsi) != cells_of(row):
                self._static(row, dict(zip(self._names, self._cells(row), strict=True)), ts, mmsi, msg_type)
        slow = self._positions[slow_before:]
        del self._positions[slow_before:]
        batch = fast.batch(accepted) if fast is not None else PositionBatch.empty()
        if slow:  # back in the order of their rows
            flags = np.array(order, np.bool_)
            where = np.empty(len(order), np.int64)
            where[flags] = np.arange(len(accepted))
            where[~flags] = np.arange(len(accepted), len(order))
            batch = PositionBatch.concat([batch, PositionBatch.from_records(slow)]).select(where)
        self._batches.append(batch)

    def close(self) -> None:
        """End of the file: a CSV row is whole on its line, nothing waits."""

    def take(self) -> tuple[list[Position], list[StaticReport]]:
        positions, statics = self.take_batch()
        return positions.records(), statics

    def take_batch(self) -> tuple[PositionBatch, list[StaticReport]]:
        """As :meth:`take`, the positions by column (to cross to the writer's process)."""
        batches, statics = self._batches, self._statics
        self._batches, self._statics = [], []
        return PositionBatch.concat(batches), statics

    def _header(self, line: str) -> None:
        fmt = self.format or detect_format(line)
        if fmt is None:
            self.stats.note_malformed(
                "header", 1, self._lineno, "not a MarineCadastre, DMA or Kystverket header (give --format)"
            )
            return
        layout = LAYOUTS[fmt]
        names = [name.strip() for name in next(csv.reader([line], delimiter=layout.delimiter))]
        missing = layout.signature - set(names)
        if missing:
            self.stats.note_malformed(
                "header", 1, self._lineno, f"no column {', '.join(sorted(missing))} for {fmt} format"
            )
            return
        self.format = fmt
        self._delimiter = layout.delimiter
        self._width = len(names)
        self._index = {field: names.index(col) for field, col in layout.columns.items() if col in names}
        self._names = tuple(self._index)
        self._cells = itemgetter(*self._index.values())
        statics = [self._index[name] for name in _STATIC_CELLS if name in self._index]
        self._static_cells: Callable[[list[str]], tuple[str, ...]] = (
            itemgetter(*statics) if len(statics) > 1 else lambda row: tuple(row[i] for i in statics)
        )
        self._parse_time = _day_first_time if fmt is CsvFormat.dma else _iso_time
        self.stats.filtered["header"] += 1

    def _time_or_none(self, value: str) -> datetime | None:
        try:
            return self._time(value)
        except RowError:
            return None

    def _time(self, value: str) -> datetime:
        if value == self._last_time[0]:
            return self._last_time[1]  # archives are sorted: many rows share a second
        try:
            ts = self._parse_time(value)
        except ValueError:
            raise RowError("timestamp", f"{value[:40]!r} is not a time") from None
        self._last_time = (value, ts)
        return ts

    def _row(self, line: str, latest: datetime) -> None:
        row = line.split(self._delimiter)
        if '"' in line:
            row = next(csv.reader([line], delimiter=self._delimiter))
        if len(row) != self._width:
            raise RowError("fields", f"{len(row)} fields, the header has {self._width}")
        cell: dict[str, str] = dict(zip(self._names, self._cells(row), strict=True))
        try:
            mmsi = _int(cell["mmsi"], "mmsi")
        except RowError:
            mmsi = None
        if mmsi is None or not 0 < mmsi <= 999_999_999:
            raise RowError("mmsi", f"MMSI {cell['mmsi'][:20]!r}")
        ts = self._time(cell["ts"])
        if ts > latest:
            raise RowError("timestamp", "event time in the future")
        msg_type = self._msg_type(cell)
        self.stats.messages_by_type[msg_type] += 1
        if msg_type not in POSITION_TYPES:
            self.stats.filtered["type_not_stored"] += 1
            return
        heading = _small_int(cell.get("heading", ""), "heading")
        crc = crc32("\x1f".join(cell.values()).encode())
        raw_status = cell.get("status", "")
        if self.format is CsvFormat.dma:
            status = _STATUSES.get(raw_status.strip().lower())
        else:
            status = _small_int(raw_status, "status")
        position = Position(
            ts, mmsi, msg_type, _measure(cell["lat"], "lat", 91.0), _measure(cell["lon"], "lon", 181.0),
            _measure(cell.get("speed", ""), "speed", 102.3),
            _measure(cell.get("course", ""), "course", 360.0),
            None if heading is None or heading >= 511 else heading, status,
            _float(cell.get("turn", ""), "ROT"), None, None, None, crc,
        )  # fmt: skip
        # a repeat only of a row read whole (one refused is refused again, not "already seen")
        key = (mmsi, ts, crc)
        if key in self._seen:
            self.stats.duplicate += 1
            return
        self._seen[key] = None
        if len(self._seen) > MAX_SEEN_ROWS:
            del self._seen[next(iter(self._seen))]
        self._positions.append(position)
        self.stats.positions += 1
        self.stats.accepted += 1
        self._static(row, cell, ts, mmsi, msg_type)

    def _msg_type(self, cell: dict[str, str]) -> int:
        if "msg_type" in cell:
            msg_type = _int(cell["msg_type"], "message_nr")
            if msg_type is None:
                raise RowError("type", "no message type")
            return msg_type
        klass = cell.get("class", "a").strip().lower()
        return _CLASS_TYPES.get(klass, 0)

    def _static(self, row: list[str], cell: dict[str, str], ts: datetime, mmsi: int, msg_type: int) -> None:
        raw: tuple[str, ...] = self._static_cells(row)
        if self._identities.get(mmsi) == raw:
            return  # as last time: nothing to parse
        values = self._static_values(cell, ts)
        self._identities.pop(mmsi, None)
        self._identities[mmsi] = raw  # most recent last, for eviction
        if len(self._identities) > MAX_IDENTITIES:
            del self._identities[next(iter(self._identities))]
        if all(v is None for v in values):
            return
        self._statics.append(StaticReport(ts, mmsi, 24 if msg_type == 18 else 5, *values, 0))
        self.stats.static_reports += 1

    def _static_values(self, cell: dict[str, str], ts: datetime) -> _Identity:
        """The static fields of a row; one that cannot be read is left out
        (None): the row's position is read already, and stands."""
        imo_text = cell.get("imo", "").strip().upper().removeprefix("IMO")
        imo = _lenient(_int, imo_text, "IMO")
        ship_type: int | None
        raw_type = cell.get("ship_type", "")
        if self.format is CsvFormat.dma:
            ship_type = _SHIP_TYPES.get(raw_type.strip().lower())
        else:
            ship_type = _lenient(_int, raw_type, "ship type")
        draught = _lenient(_float, cell.get("draught", ""), "draught")
        eta_text = cell.get("eta", "")
        eta = self._time_or_none(eta_text) if _text(eta_text) else None
        bow, stern, port, starboard = (
            _lenient(_int, cell.get(name, ""), name)
            for name in ("to_bow", "to_stern", "to_port", "to_starboard")
        )
        return (
            imo if imo and imo > 0 else None,
            _text(cell.get("callsign", "")),
            _text(cell.get("shipname", "")),
            ship_type or None,
            bow,
            stern,
            port,
            starboard,
            draught or None,
            _text(cell.get("destination", "")),
            eta,
        )


class _Columns:
    """The rows of full width of one chunk, read a column at a time: for
    each, whether it is good (every cell read as :meth:`CsvDecoder._row`
    reads it, the time not ahead of ``latest``) and its values."""

    def __init__(self, decoder: CsvDecoder, rows: list[list[str]], latest: datetime) -> None:
        n = len(rows)
        selected = [decoder._cells(row) for row in rows]
        columns = dict(zip(decoder._names, zip(*selected, strict=True), strict=True))
        empty = ("",) * n

        def col(name: str) -> Sequence[str]:
            return columns.get(name, empty)

        mmsi, good = csvcolumns.integers(col("mmsi"))
        good &= (mmsi > 0) & (mmsi <= 999_999_999)
        times = csvcolumns.mapped(col("ts"), decoder._time_or_none)
        good &= np.array([t is not None and t <= latest for t in times], np.bool_)
        if "msg_type" in columns:
            types, ok = csvcolumns.integers(col("msg_type"))
            good &= ok & ~np.isnan(types)
        else:
            classes = col("class") if "class" in columns else ("a",) * n
            types = np.array(csvcolumns.mapped(classes, _class_type), np.float64)
        heading, ok = csvcolumns.integers(col("heading"))
        good &= ok & _small(heading) & _small(types)
        self.lat, ok = csvcolumns.measures(col("lat"), 91.0)
        good &= ok
        self.lon, ok = csvcolumns.measures(col("lon"), 181.0)
        good &= ok
        self.speed, ok = csvcolumns.measures(col("speed"), 102.3)
        good &= ok
        self.course, ok = csvcolumns.measures(col("course"), 360.0)
        good &= ok
        self.turn, ok = csvcolumns.numbers(col("turn"))
        good &= ok
        if decoder.format is CsvFormat.dma:
            words = csvcolumns.mapped(col("status"), lambda w: _STATUSES.get(w.strip().lower()))
            self.status = np.array([MISSING if s is None else s for s in words], np.int32)
        else:
            status, ok = csvcolumns.integers(col("status"))
            good &= ok & _small(status)
            self.status = np.where(np.isnan(status) | ~good, MISSING, status).astype(np.int64)
        self.good = good
        usable = np.where(good, 0, 1)  # integer casts of the rows not read here are never used
        self._mmsi = np.where(good, mmsi, usable).astype(np.int64)
        self._types = np.where(good, types, usable).astype(np.int64)
        self.mmsis: list[int] = self._mmsi.tolist()
        self.types: list[int] = self._types.tolist()
        unknown = np.isnan(heading) | (heading >= 511) | ~good
        self.heading = np.where(unknown, MISSING, heading).astype(np.int64)
        self.times = times
        self.crcs = [crc32("\x1f".join(cells).encode()) for cells in selected]

    def batch(self, rows: list[int]) -> PositionBatch:
        """The positions of ``rows`` (indices into this chunk's rows of full width)."""
        pick = np.array(rows, np.int64)
        n = len(rows)
        times = self.times
        micros = [(times[i] - _EPOCH) // _ONE_US for i in rows]  # type: ignore[operator]
        return PositionBatch(
            np.array(micros, np.int64), self._mmsi[pick],
            self._types[pick].astype(np.int32), self.lat[pick], self.lon[pick],
            self.speed[pick], self.course[pick], self.heading[pick].astype(np.int32),
            self.status[pick].astype(np.int32), self.turn[pick], np.full(n, -1, np.int8),
            np.full(n, MISSING, np.int32), [None] * n, np.array(self.crcs, np.int64)[pick],
            np.ones(n, np.int32),
        )  # fmt: skip


def _small(values: csvcolumns.Floats) -> csvcolumns.Mask:
    """Where ``values`` are missing or fit a ``smallint`` (others take the row-at-a-time road)."""
    return np.isnan(values) | (np.abs(values) < 1 << 15)


def _class_type(cell: str) -> int:
    return _CLASS_TYPES.get(cell.strip().lower(), 0)
