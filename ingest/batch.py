"""Positions by column: from the decoder to the database without a Python
object per record. Pure (NumPy, no I/O).

A :class:`PositionBatch` holds what a list of :class:`~ingest.records.Position`
holds, one array per field, in the same order: event times as microseconds
since the UNIX epoch, "not available" as NaN (floats) or :data:`MISSING`
(small integers; -1 for ``accuracy``).
It crosses the process boundary as a handful of buffers (a list of records
pickled at a tenth of the speed), becomes the binary COPY of its rows in a
few array operations (:meth:`copy_data`, where a row at a time through
psycopg cost more than the decoding), and gives records
(:meth:`records`) only where one is needed: the detectors' watched vessels, a
replay's merge, a refused batch's isolation.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ingest.records import Position

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)
_DAY_US: Final = 86_400_000_000
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
#: PostgreSQL's binary timestamps count from 2000-01-01.
_PG_EPOCH_US: Final = 946_684_800_000_000
_SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER: Final = b"\xff\xff"

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Smalls = npt.NDArray[np.int32]
#: A small integer that is not available (outside ``smallint``, so any value a source gives is kept).
MISSING: Final = int(np.iinfo(np.int32).min)
_SMALLINT: Final = (-(1 << 15), (1 << 15) - 1)
_INT32: Final = 1 << 31


def micros(times: npt.NDArray[np.float64]) -> Ints:
    """UNIX seconds to whole microseconds as ``datetime.fromtimestamp`` rounds
    them (the fraction's microseconds rounded half to even)."""
    fraction, whole = np.modf(times)
    us = np.rint(fraction * 1e6)
    return whole.astype(np.int64) * 1_000_000 + us.astype(np.int64)


def _as_text_real(values: Floats) -> Floats:
    """``values`` as PostgreSQL gives back a ``real``: the shortest text of
    their single-precision value. A number of at most three decimals below
    1000 in magnitude (every speed, course and turn decoded from AIS) comes
    back as itself (``tests/test_batch.py`` checks each of them); only the
    others are written out and read again."""
    out = values.copy()
    with np.errstate(invalid="ignore"):
        other = ~((np.abs(values) < 1000) & (np.round(values, 3) == values))
    if other.any():
        out[other] = values[other].astype(np.float32).astype(str).astype(np.float64)
    return out


def _none_where(values: npt.NDArray[Any], missing: npt.NDArray[np.bool_]) -> list[Any]:
    if not missing.any():
        return values.tolist()  # type: ignore[no-any-return]
    out = values.astype(object)
    out[missing] = None
    return out.tolist()  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True, eq=False)
class PositionBatch:
    """Positions by column (see the module docs); ``len`` is the row count."""

    ts_us: Ints
    mmsi: Ints
    msg_type: Smalls
    lat: Floats
    lon: Floats
    speed: Floats
    course: Floats
    heading: Smalls
    status: Smalls
    turn: Floats
    accuracy: npt.NDArray[np.int8]
    second: Smalls
    station: list[str | None]
    payload_crc: Ints
    sentences: Smalls

    def __len__(self) -> int:
        return len(self.ts_us)

    @classmethod
    def empty(cls) -> PositionBatch:
        return cls.from_records([])

    @classmethod
    def from_records(cls, records: Sequence[Position]) -> PositionBatch:
        """The batch of ``records`` (None as NaN or :data:`MISSING`)."""
        if not records:
            i64, i16, f64 = np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.float64)
            i8 = np.empty(0, np.int8)
            return cls(i64, i64, i16, f64, f64, f64, f64, i16, i16, f64, i8, i16, [], i64, i16)
        (ts, mmsi, msg_type, lat, lon, speed, course, heading, status, turn, accuracy, second, station, crc,
         n) = zip(*records, strict=True)  # fmt: skip

        def small(values: Iterable[int | None]) -> Smalls:
            # beyond 32 bits, kept as the largest: still beyond smallint, so still refused
            kept = [MISSING if v is None else v if -_INT32 < v < _INT32 else _INT32 - 1 for v in values]
            return np.array(kept, np.int32)

        def real(values: Iterable[float | None]) -> Floats:
            return np.array(values, np.float64)  # None is NaN

        return cls(
            np.array([(t - _EPOCH) // _ONE_US for t in ts], np.int64), np.array(mmsi, np.int64),
            small(msg_type), real(lat), real(lon), real(speed), real(course), small(heading),
            small(status), real(turn), np.array([-1 if a is None else a for a in accuracy], np.int8),
            small(second), list(station), np.array(crc, np.int64), small(n),
        )  # fmt: skip

    @classmethod
    def concat(cls, batches: Sequence[PositionBatch]) -> PositionBatch:
        batches = [b for b in batches if len(b)]
        if len(batches) == 1:
            return batches[0]
        if not batches:
            return cls.empty()
        columns: list[Any] = []
        for name in cls.__slots__:
            if name == "station":
                columns.append([s for b in batches for s in b.station])
            else:
                columns.append(np.concatenate([getattr(b, name) for b in batches]))
        return cls(*columns)

    def select(self, which: npt.NDArray[Any]) -> PositionBatch:
        """The rows ``which`` picks (a boolean mask or indices), in its order."""
        if which.dtype == np.bool_:
            which = np.flatnonzero(which)
        columns: dict[str, Any] = {
            name: getattr(self, name)[which] for name in self.__slots__ if name != "station"
        }
        station = self.station
        return PositionBatch(**columns, station=[station[i] for i in which.tolist()])

    def as_stored(self) -> PositionBatch:
        """The batch as reading it back would give it: speed, course and turn
        are ``real`` columns, which PostgreSQL sends as the shortest text that
        names their single-precision value (``12.3``, not 12.300000190734863)."""
        columns: dict[str, Any] = {name: getattr(self, name) for name in self.__slots__}
        for name in ("speed", "course", "turn"):
            columns[name] = _as_text_real(columns[name])
        return PositionBatch(**columns)

    def days(self) -> set[date]:
        """The UTC days of the batch's event times."""
        return {date.fromordinal(_EPOCH_ORDINAL + d) for d in np.unique(self.ts_us // _DAY_US).tolist()}

    def day_numbers(self) -> Ints:
        """Each row's UTC day, as days since the epoch."""
        return self.ts_us // _DAY_US

    def oldest_by_vessel(self) -> tuple[Ints, Ints]:
        """Each vessel's MMSI and the time of its oldest row (microseconds), by MMSI."""
        order = np.lexsort((self.ts_us, self.mmsi))
        mmsi = self.mmsi[order]
        first = np.flatnonzero(np.concatenate([[True], mmsi[1:] != mmsi[:-1]])) if len(mmsi) else order
        return mmsi[first], self.ts_us[order][first]

    def lines(self) -> int:
        """The NMEA sentences the batch's messages came in."""
        return int(self.sentences.sum())

    def records(self) -> list[Position]:
        """The batch as :class:`Position` records."""
        if not len(self):
            return []
        cache: dict[int, datetime] = {}
        times = []
        for us in self.ts_us.tolist():
            when = cache.get(us)
            if when is None:
                when = cache[us] = _EPOCH + timedelta(microseconds=us)
            times.append(when)
        accuracy = _none_where(self.accuracy == 1, self.accuracy < 0)
        columns = (
            times, self.mmsi.tolist(), self.msg_type.tolist(),
            *(_none_where(c, np.isnan(c)) for c in (self.lat, self.lon, self.speed, self.course)),
            _none_where(self.heading, self.heading == MISSING),
            _none_where(self.status, self.status == MISSING),
            _none_where(self.turn, np.isnan(self.turn)), accuracy,
            _none_where(self.second, self.second == MISSING),
            self.station, self.payload_crc.tolist(), self.sentences.tolist(),
        )  # fmt: skip
        new = tuple.__new__
        return [new(Position, row) for row in zip(*columns, strict=True)]

    def copy_data(self, *, with_sentences: bool = False) -> bytes:
        """The rows as one binary ``COPY ... (FORMAT BINARY)`` stream, signature
        and trailer included, in the columns of ``storage.writer.POSITION_FIELDS``
        (and ``sentences``, for the stage table). Rows with the same fields
        missing and the same station have one layout: each such group is
        one structured array, filled a column at a time (the order of rows in
        a COPY does not matter). A small integer beyond ``smallint`` (a
        source's nonsense) goes as four bytes, which PostgreSQL refuses: the
        writer then isolates its record, as for any value it refuses."""
        nan = np.isnan
        # (name, values, where NULL) in the columns' order; the station is its own
        columns: list[tuple[str, npt.NDArray[Any], npt.NDArray[np.bool_] | None]] = [
            ("ts", self.ts_us - _PG_EPOCH_US, None), ("mmsi", self.mmsi, None),
            ("msg_type", self.msg_type, None),
            ("lat", self.lat, nan(self.lat)), ("lon", self.lon, nan(self.lon)),
            ("speed", self.speed, nan(self.speed)), ("course", self.course, nan(self.course)),
            ("heading", self.heading, self.heading == MISSING),
            ("status", self.status, self.status == MISSING),
            ("turn", self.turn, nan(self.turn)), ("accuracy", self.accuracy, self.accuracy < 0),
            ("second", self.second, self.second == MISSING),
        ]  # fmt: skip
        after = [("crc", self.payload_crc)] + ([("sentences", self.sentences)] if with_sentences else [])
        # each row's layout: which fields are missing (a bit each), any too wide, and its station
        pattern = np.zeros(len(self), np.int64)
        wide = np.zeros(len(self), np.bool_)
        for bit, (name, values, missing) in enumerate(columns):
            if missing is not None:
                pattern |= missing.astype(np.int64) << bit
            if _COPY_TYPES[name] == ">i2":
                wide |= (values != MISSING) & ((values < _SMALLINT[0]) | (values > _SMALLINT[1]))
        if with_sentences:
            wide |= (self.sentences < _SMALLINT[0]) | (self.sentences > _SMALLINT[1])
        pattern |= wide.astype(np.int64) << len(columns)
        station_ids = {s: k for k, s in enumerate(dict.fromkeys(self.station))}
        pattern |= np.array([station_ids[s] for s in self.station], np.int64) << (len(columns) + 1)
        chunks = [_SIGNATURE]
        for key in np.unique(pattern).tolist():
            rows = np.flatnonzero(pattern == key)
            first = rows[0]
            kinds = _WIDE_TYPES if wide[first] else _COPY_TYPES
            layout, present, absent = [("count", ">i2")], [], []
            for name, values, missing in columns:
                layout.append((f"{name}_len", ">i4"))
                if missing is not None and missing[first]:
                    absent.append(name)
                else:
                    layout.append((name, kinds[name]))
                    present.append((name, values))
            station = self.station[first]
            layout.append(("station_len", ">i4"))
            if station is not None:
                data = station.encode()
                layout.append(("station", f"S{len(data)}"))
            for name, values in after:
                layout += [(f"{name}_len", ">i4"), (name, kinds[name])]
                present.append((name, values))
            group = np.empty(len(rows), np.dtype(layout))  # packed: the fields one after another
            group["count"] = len(columns) + 1 + len(after)
            for name, values in present:
                group[f"{name}_len"] = np.dtype(kinds[name]).itemsize
                group[name] = values[rows]
            for name in absent:
                group[f"{name}_len"] = -1
            if station is None:
                group["station_len"] = -1
            else:
                group["station_len"], group["station"] = len(data), data
            chunks.append(group.tobytes())
        chunks.append(_TRAILER)
        return b"".join(chunks)


#: Each column's binary COPY type (big-endian, as PostgreSQL sends and takes it).
_COPY_TYPES: Final = {
    "ts": ">i8", "mmsi": ">i4", "msg_type": ">i2", "lat": ">f8", "lon": ">f8", "speed": ">f4",
    "course": ">f4", "heading": ">i2", "status": ">i2", "turn": ">f4", "accuracy": "u1", "second": ">i2",
    "crc": ">i8", "sentences": ">i2",
}  # fmt: skip
#: As those, the small integers four bytes wide (for a group PostgreSQL is to refuse).
_WIDE_TYPES: Final = {name: ">i4" if kind == ">i2" else kind for name, kind in _COPY_TYPES.items()}
