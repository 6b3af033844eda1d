"""Feeds that arrive as JSON, turned into what the rest of aiswatch takes. Pure.

* AIS-catcher's MQTT formats JSON_NMEA and JSON_FULL carry the raw sentences
  in ``nmea`` with ``rxuxtime`` (UNIX seconds) and ``station_id``: they become
  NMEA lines with a tag block (``\\s:station,c:time*hh\\``), so the same
  decoder, checksums, reassembly and duplicate window apply.
* JSON_FULL without ``nmea`` (positions, and type 5 static and voyage data),
  and aisstream.io's messages (``MessageType``, ``MetaData``, ``Message`` with
  PascalCase fields), are mapped to records.

"Not available" values (lat 91, lon 181, speed 102.3, course 360, heading
511) become ``None`` here too, and text fields are trimmed as NMEA's are
(:func:`ingest.decode.text`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zlib import crc32

from ingest.decode import eta_from, text
from ingest.nmea import xor_checksum
from ingest.records import Position, StaticReport


class FeedError(ValueError):
    """A JSON message that cannot be used; the text says why."""


def _tag(station: str | None, epoch_s: float | None) -> bytes:
    fields = []
    if station:
        fields.append(f"s:{station}")
    if epoch_s is not None:
        fields.append(f"c:{int(epoch_s)}")
    if not fields:
        return b""
    body = ",".join(fields).encode()
    return b"\\" + body + b"*" + f"{xor_checksum(body):02X}".encode() + b"\\"


def aiscatcher_lines(doc: dict[str, Any]) -> list[bytes]:
    """The sentences of an AIS-catcher JSON message, tag-blocked with its time and station."""
    sentences = doc.get("nmea")
    if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
        raise FeedError("no 'nmea' list of sentences")
    when = doc.get("rxuxtime")
    station = doc.get("station_id")
    tag = _tag(None if station is None else str(station), when if isinstance(when, int | float) else None)
    return [tag + s.strip().encode() for s in sentences]


def _na(value: Any, missing: float) -> float | None:
    if value is None or not isinstance(value, int | float):
        return None
    return None if abs(float(value) - missing) < 1e-9 or float(value) >= missing else float(value)


def _text(body: dict[str, Any], key: str) -> str | None:
    """A text field, trimmed as every source's are; not text at all is a :class:`FeedError`."""
    value = body.get(key)
    if value is not None and not (isinstance(value, str) and value.isprintable()):
        raise FeedError(f"{key} is not text: {str(value)[:40]!r}")
    return text(value)


def _positive(value: Any) -> int | None:
    """A JSON integer above 0, else None (0 is "not available" for IMO, ship type, dimensions)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _crc(doc: Any) -> int:
    return crc32(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


def aiscatcher_record(doc: dict[str, Any]) -> Position | StaticReport:
    """A JSON_FULL position report, or static and voyage data (type 5), without sentences."""
    try:
        mmsi, msg_type, when = int(doc["mmsi"]), int(doc["type"]), float(doc["rxuxtime"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FeedError(f"needs mmsi, type and rxuxtime ({exc})") from exc
    ts = datetime.fromtimestamp(when, UTC)
    if msg_type == 5:
        draught = doc.get("draught")
        return StaticReport(
            ts=ts, mmsi=mmsi, msg_type=5, imo=_positive(doc.get("imo")),
            callsign=_text(doc, "callsign"), shipname=_text(doc, "shipname"),
            ship_type=_positive(doc.get("shiptype")), to_bow=_positive(doc.get("to_bow")),
            to_stern=_positive(doc.get("to_stern")), to_port=_positive(doc.get("to_port")),
            to_starboard=_positive(doc.get("to_starboard")),
            draught=float(draught) if isinstance(draught, int | float) and draught > 0 else None,
            destination=_text(doc, "destination"),
            eta=_eta(ts, doc, ("month", "day", "hour", "minute")),
        )  # fmt: skip
    if msg_type not in (1, 2, 3, 18, 19, 27):
        raise FeedError(f"type {msg_type} is not a position report or type 5")
    heading = doc.get("heading")
    return Position(
        ts, mmsi, msg_type, _na(doc.get("lat"), 91.0),
        _na(doc.get("lon"), 181.0), _na(doc.get("speed"), 102.3), _na(doc.get("course"), 360.0),
        None if heading in (None, 511) else int(heading), doc.get("status"), None, None, doc.get("second"),
        None if doc.get("station_id") is None else str(doc["station_id"]), _crc(doc),
    )  # fmt: skip


def _aisstream_time(meta: dict[str, Any]) -> datetime:
    """MetaData.time_utc, e.g. '2024-03-12 06:15:04.123456789 +0000 UTC'."""
    raw = str(meta["time_utc"])
    stamp = raw.split(" +", maxsplit=1)[0]
    if "." in stamp:
        head, frac = stamp.split(".")
        stamp = f"{head}.{frac[:6]}"
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC)


_POSITION_KINDS = frozenset(
    {
        "PositionReport",
        "StandardClassBPositionReport",
        "ExtendedClassBPositionReport",
        "LongRangeAisBroadcastMessage",
    }
)


def aisstream_record(doc: dict[str, Any]) -> Position | StaticReport | None:
    """An aisstream.io message as a record; None for kinds aiswatch does not store."""
    kind = doc.get("MessageType")
    if not isinstance(kind, str):
        raise FeedError("not an aisstream.io message (no MessageType)")
    if kind not in _POSITION_KINDS and kind != "ShipStaticData":
        return None  # a kind aiswatch does not store (counted as filtered by the caller)
    try:
        meta = doc["MetaData"]
        body = doc["Message"][kind]
        ts = _aisstream_time(meta)
        mmsi = int(body.get("UserID", meta.get("MMSI")))
    except (KeyError, TypeError, ValueError) as exc:
        raise FeedError(f"not an aisstream.io message ({exc!r})") from exc
    if kind in _POSITION_KINDS:
        heading = body.get("TrueHeading")
        return Position(
            ts, mmsi, int(body.get("MessageID", 1)), _na(body.get("Latitude"), 91.0),
            _na(body.get("Longitude"), 181.0), _na(body.get("Sog"), 102.3), _na(body.get("Cog"), 360.0),
            None if heading in (None, 511) else int(heading), body.get("NavigationalStatus"),
            body.get("RateOfTurn"), body.get("PositionAccuracy"), body.get("Timestamp"), "aisstream",
            _crc(body),
        )  # fmt: skip
    if kind == "ShipStaticData":
        dim = body.get("Dimension") or {}
        eta = body.get("Eta") or {}
        return StaticReport(
            ts, mmsi, int(body.get("MessageID", 5)), body.get("ImoNumber") or None,
            _text(body, "CallSign"), _text(body, "Name"),
            body.get("Type"), dim.get("A"), dim.get("B"), dim.get("C"), dim.get("D"),
            _na(body.get("MaximumStaticDraught"), 25.5) or None,
            _text(body, "Destination"), _eta(ts, eta, ("Month", "Day", "Hour", "Minute")),
        )  # fmt: skip
    return None


def _eta(ts: datetime, fields: Any, keys: tuple[str, str, str, str]) -> datetime | None:
    """The ETA from a feed's month, day, hour and minute fields (``keys``); None if absent or odd."""
    try:
        return eta_from(ts, *(int(fields[k]) for k in keys))
    except (KeyError, TypeError, ValueError):
        return None
