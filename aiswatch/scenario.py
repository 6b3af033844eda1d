"""A SYNTHETIC scenario: the pattern of the 2024 Rajin - Russia shuttle, made
from the real port geometry, as NMEA lines with tag blocks.

Nothing here is a real observation. The voyages follow what DOMAIN.md
reports (LADY R loading at Rajin on 12 Mar 2024, in Vostochny on the 14th,
mostly dark between; ANGARA to Dunai; MARIA, MAIA-1), with invented MMSIs in
the Russian (273) range and invented timings, and with the decoys an analyst
meets: another MARIA under another flag, the Sierra Leone ANGARA. Each line's
tag block names its source ``s:synthetic``. The demo and the tests replay it
through the same ingest as any capture.

A voyage is written as a script: ``sail_to`` (reports every ``every_s``
while the transponder is on), ``stay``, ``dark`` (the transponder off),
``static`` (a type 5 report, also sent every 30 min while on), ``jump`` (one
implausible fix).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import reduce
from math import atan2, ceil, degrees, radians
from operator import xor
from pathlib import Path
from typing import Any

from pyais import encode_dict

from detectors.geo import distance_nm
from detectors.zones import PortZones, load_zones

STATIC_EVERY = timedelta(minutes=30)
#: When the scenario begins (its first ship sets out a little later).
SCENARIO_START = datetime(2024, 3, 10, 0, 0, tzinfo=UTC)


def _checksum(body: str) -> str:
    return f"{reduce(xor, body.encode(), 0):02X}"


def nmea_lines(ts: datetime, data: dict[str, Any], group: int = 0) -> list[str]:
    """One message as NMEA sentences, each with a tag block (receiver time);
    a multi-part message is tag-block group ``group``."""
    sentences = encode_dict(data, talker_id="AI", sentence_type="VDM", radio_channel="A", seq_id=group % 10)
    out = []
    for number, sentence in enumerate(sentences, 1):
        fields = f"s:synthetic,c:{int(ts.timestamp())}"
        if len(sentences) > 1:
            fields = f"g:{number}-{len(sentences)}-{group}," + fields
        out.append(f"\\{fields}*{_checksum(fields)}\\{sentence}")
    return out


@dataclass
class Voyage:
    """One ship's script; see the module docs."""

    mmsi: int
    name: str
    start: datetime
    lat: float
    lon: float
    imo: int = 0
    callsign: str = ""
    ship_type: int = 70
    draught: float = 5.0
    destination: str = ""
    now: datetime = field(init=False)
    messages: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    _last_static: datetime | None = None

    def __post_init__(self) -> None:
        self.now = self.start

    def _position(self, speed: float, course: float, status: int) -> None:
        self.messages.append(
            (self.now, {
                "type": 1, "mmsi": self.mmsi, "status": status, "speed": round(speed, 1),
                "lat": round(self.lat, 5), "lon": round(self.lon, 5), "course": round(course, 1),
                "heading": int(course) % 360, "second": self.now.second, "accuracy": 1,
            })
        )  # fmt: skip
        if self._last_static is None or self.now - self._last_static >= STATIC_EVERY:
            self.static()

    def static(self, **changes: Any) -> Voyage:
        """Send (changed) static and voyage data now."""
        for name, value in changes.items():
            setattr(self, name, value)
        if self._last_static == self.now:  # one report a second: this one replaces the routine one
            self.messages.pop(
                next(i for i in range(len(self.messages) - 1, -1, -1) if self.messages[i][1]["type"] == 5)
            )
        self._last_static = self.now
        self.messages.append(
            (self.now, {
                "type": 5, "mmsi": self.mmsi, "ais_version": 0, "imo": self.imo, "callsign": self.callsign,
                "shipname": self.name, "ship_type": self.ship_type, "to_bow": 90, "to_stern": 40,
                "to_port": 10, "to_starboard": 10, "epfd": 1, "month": 0, "day": 0, "hour": 24,
                "minute": 60, "draught": self.draught, "destination": self.destination, "dte": 0,
            })
        )  # fmt: skip
        return self

    def sail_to(
        self, lat: float, lon: float, speed_kn: float, *, every_s: float = 60, ais: bool = True
    ) -> Voyage:
        miles = distance_nm(self.lat, self.lon, lat, lon)
        course = (degrees(atan2(radians(lon - self.lon), radians(lat - self.lat))) + 360) % 360
        steps = max(1, ceil(miles / speed_kn * 3600 / every_s))
        lat0, lon0 = self.lat, self.lon
        step = timedelta(seconds=miles / speed_kn * 3600 / steps)
        for i in range(1, steps + 1):
            self.now += step
            self.lat, self.lon = lat0 + (lat - lat0) * i / steps, lon0 + (lon - lon0) * i / steps
            if ais:
                self._position(speed_kn, course, 0)
        return self

    def stay(self, hours: float, *, every_s: float = 180, status: int = 5, ais: bool = True) -> Voyage:
        end = self.now + timedelta(hours=hours)
        while self.now + timedelta(seconds=every_s) <= end:
            self.now += timedelta(seconds=every_s)
            if ais:
                self._position(0.0, 0.0, status)
        self.now = end
        return self

    def dark(self) -> Voyage:
        """The next leg or stay without AIS: use ``ais=False`` on it."""
        self._last_static = None
        return self

    def jump(self, lat: float, lon: float) -> Voyage:
        """One fix far off the track (a spoofed or broken position)."""
        here = self.lat, self.lon
        self.now += timedelta(seconds=30)
        self.lat, self.lon = lat, lon
        self._position(10.0, 0.0, 0)
        self.lat, self.lon = here
        return self

    def lines(self, first_group: int = 0) -> Iterator[tuple[datetime, str]]:
        for group, (ts, data) in enumerate(self.messages, first_group):
            for line in nmea_lines(ts, data, group):
                yield ts, line


def _berth(zones: PortZones, name: str) -> tuple[float, float]:
    port = next(p for p in zones.ports if p.name == name)
    return port.lat, port.lon


def _offing(zones: PortZones, name: str, miles: float = 12.0) -> tuple[float, float]:
    """A point ``miles`` south of the port's outer zone: the open sea."""
    port = next(p for p in zones.ports if p.name == name)
    south = port.outermost.bounds[1]
    return south - miles / 60.0, port.lon


def voyages(zones: PortZones | None = None) -> list[Voyage]:
    """The scenario's ships (all SYNTHETIC), built on the real port zones."""
    zones = zones or load_zones()
    rajin, vostochny, dunai = (_berth(zones, p) for p in ("Rajin", "Vostochny", "Dunai"))
    off_rajin, off_vostochny, off_dunai = (_offing(zones, p) for p in ("Rajin", "Vostochny", "Dunai"))
    t0 = SCENARIO_START

    # LADY R (identified by its IMO): loads at Rajin, goes dark, appears in Vostochny.
    lady_r = Voyage(273_100_001, "LADY R", t0, off_rajin[0] - 0.3, off_rajin[1] + 0.2, imo=9161003,
                    callsign="UBLR1", draught=5.1, destination="RAJIN")  # fmt: skip
    lady_r.sail_to(*off_rajin, 11).sail_to(*rajin, 6).stay(30)
    lady_r.static(draught=7.4, destination="VOSTOCHNY").stay(14)
    lady_r.sail_to(*off_rajin, 8).sail_to(off_rajin[0] - 0.1, off_rajin[1] + 0.3, 11)
    lady_r.dark().sail_to(*off_vostochny, 11, ais=False).sail_to(*vostochny, 6, ais=False)
    lady_r.stay(2, ais=False).stay(20)
    lady_r.static(draught=5.2, destination="VLADIVOSTOK").stay(6)
    lady_r.sail_to(*off_vostochny, 8).sail_to(off_vostochny[0] - 0.05, off_vostochny[1] - 0.4, 11)
    lady_r.jump(41.0, 136.5).sail_to(off_vostochny[0] - 0.1, off_vostochny[1] - 0.8, 11)

    # ANGARA (IMO): from Dunai, dark for 30 h, back near Dunai; then a new MMSI.
    angara = Voyage(273_100_002, "ANGARA", t0 + timedelta(hours=6), *off_dunai, imo=9179842,
                    callsign="UBAN2", draught=4.8, destination="DUNAY")  # fmt: skip
    angara.sail_to(*dunai, 6).stay(20).sail_to(*off_dunai, 8).sail_to(
        off_dunai[0] - 0.2, off_dunai[1] - 0.2, 11
    )
    angara.dark().stay(30, ais=False).sail_to(off_dunai[0] - 0.1, off_dunai[1], 10)
    angara_new = Voyage(273_100_012, "ANGARA", angara.now + timedelta(hours=1), angara.lat, angara.lon,
                        imo=9179842, callsign="UBAN3", draught=4.8, destination="DUNAY")  # fmt: skip
    angara_new.sail_to(*dunai, 6).stay(8)

    # MARIA (a name only; Russian MID, cargo type, in the region): probable.
    maria = Voyage(273_100_003, "MARIA", t0 + timedelta(hours=12), off_dunai[0] - 0.4, off_dunai[1] - 0.5,
                   ship_type=70, draught=6.0, destination="DUNAI")  # fmt: skip
    maria.sail_to(off_dunai[0] - 0.2, off_dunai[1] - 0.3, 10).dark().sail_to(*dunai, 8, ais=False)
    maria.stay(3, ais=False).stay(12)

    # MAIA-1 broadcasting as "MAIA 1": an alias; a Vostochny call with AIS on.
    maia = Voyage(273_100_004, "MAIA 1", t0 + timedelta(hours=20), *off_vostochny, ship_type=79,
                  draught=5.5, destination="NAKHODKA")  # fmt: skip
    maia.sail_to(*vostochny, 6).stay(10).sail_to(*off_vostochny, 8)

    # Decoys: another MARIA (Maltese flag) and the Sierra Leone ANGARA, both calling at Vostochny.
    decoy_maria = Voyage(215_100_005, "MARIA", t0 + timedelta(hours=2), *off_vostochny, ship_type=70)
    decoy_maria.sail_to(*vostochny, 6).stay(6).sail_to(*off_vostochny, 8)
    decoy_angara = Voyage(667_100_006, "ANGARA", t0 + timedelta(hours=4), *off_vostochny, imo=9124043)
    decoy_angara.sail_to(*vostochny, 6).stay(6).sail_to(*off_vostochny, 8)
    return [lady_r, angara, angara_new, maria, maia, decoy_maria, decoy_angara]


def write_scenario(path: Path, zones: PortZones | None = None) -> int:
    """Write the scenario, in time order, to ``path``; return the line count."""
    lines = [
        item
        for number, voyage in enumerate(voyages(zones))
        for item in voyage.lines(first_group=number * 100_000)
    ]
    lines.sort(key=lambda item: item[0])  # stable: a message's sentences stay together
    with open(path, "w", encoding="ascii") as fh:
        fh.write("".join(line + "\n" for _, line in lines))
    return len(lines)
