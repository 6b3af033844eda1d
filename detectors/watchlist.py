"""The watchlist: who to watch, and how a broadcast identity matches an entry.

An IMO or MMSI listed for an entry identifies a ship. A name (or alias) alone
makes a candidate; a candidate whose IMO or flag contradicts the entry is
another ship and is rejected, never reported as the watched one (hundreds of
ships are called MARIA). A candidate becomes *probable*, and is reported,
when its flag agrees and something else corroborates it: the ship type, the
call sign, or presence in a watched region or port (which only the track can
tell; see :mod:`detectors.engine`).
"""

from __future__ import annotations

import csv
import tomllib
import unicodedata
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

from detectors.evidence import (
    CallSignAgrees,
    Evidence,
    FlagAgrees,
    Listed,
    MatchLevel,
    NameMatch,
    OtherFlag,
    OtherImo,
    ShipTypeAgrees,
    level_of,
)
from ingest.errors import ConfigError

DATA = Path(__file__).with_name("data")
#: The watchlist shipped with aiswatch (DOMAIN.md's ships).
DEFAULT_WATCHLIST = DATA / "watchlist.toml"

# Latin look-alikes: Cyrillic and Greek capitals, and the digits 0 and 1.
_LOOKALIKES = str.maketrans(
    "АВЕКМНОРСТХУІЈЅΑΒΕΗΙΚΜΝΟΡΤΥΧΖ01",  # noqa: RUF001
    "ABEKMHOPCTXYIJSABEHIKMNOPTYXZOI",
)
_DROP = str.maketrans("", "", " -_.,'\"/@")


@lru_cache(maxsize=65_536)  # names repeat: every ship says its name every 6 minutes
def normalise_name(name: str | None) -> str:
    """Compare names by this: case, spaces, hyphens, ``@`` padding, accents
    and look-alike characters do not count (``Maia-1`` == ``MAIA I@@``)."""
    if not name:
        return ""
    decomposed = unicodedata.normalize("NFKD", name.upper())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return plain.translate(_LOOKALIKES).translate(_DROP)


@cache
def _mid_flags() -> dict[int, str]:
    with open(DATA / "mid.csv", encoding="utf-8") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return {int(row["mid"]): row["flag"] for row in rows}


def flag_of(mmsi: int) -> str | None:
    """The flag (ISO 3166 alpha-2) a ship station's MMSI claims through its
    MID, or None (not a ship station, or a MID not allocated)."""
    mid = mmsi // 1_000_000
    if not 201 <= mid <= 799:
        return None
    return _mid_flags().get(mid)


@dataclass(frozen=True)
class Identifier:
    kind: Literal["imo", "mmsi", "callsign"]
    value: str
    source: str = ""
    confidence: Literal["high", "medium", "low"] = "medium"


@dataclass(frozen=True)
class WatchlistEntry:
    name: str
    aliases: tuple[str, ...] = ()
    flag: str | None = None
    #: AIS ship-type code ranges (inclusive) that corroborate a name match.
    ship_types: tuple[int, int] | None = None
    max_speed_kn: float | None = None
    not_imo: frozenset[int] = frozenset()
    notes: str = ""
    identifiers: tuple[Identifier, ...] = ()

    def ids(self, kind: str) -> dict[str, Identifier]:
        return {i.value: i for i in self.identifiers if i.kind == kind}

    @property
    def imo(self) -> int | None:
        imos = self.ids("imo")
        return int(next(iter(imos))) if len(imos) == 1 else None


@dataclass(frozen=True)
class Match:
    """How a vessel (an MMSI) relates to a watchlist entry, and why: the level
    follows from the evidence (:func:`detectors.evidence.level_of`)."""

    entry: WatchlistEntry
    mmsi: int
    evidence: tuple[Evidence, ...]
    level: MatchLevel = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", level_of(self.evidence))

    @property
    def reasons(self) -> tuple[str, ...]:
        """The evidence in words, as stored and shown."""
        return tuple(map(str, self.evidence))

    def with_evidence(self, *more: Evidence) -> Match:
        return Match(self.entry, self.mmsi, self.evidence + more)


class Watchlist:
    def __init__(self, entries: list[WatchlistEntry]) -> None:
        self.entries = tuple(entries)
        self.by_mmsi: dict[int, WatchlistEntry] = {}
        self.by_imo: dict[int, WatchlistEntry] = {}
        self.by_name: dict[str, list[WatchlistEntry]] = {}
        for entry in entries:
            self.by_mmsi.update({int(v): entry for v in entry.ids("mmsi")})
            self.by_imo.update({int(v): entry for v in entry.ids("imo")})
            for name in (entry.name, *entry.aliases):
                self.by_name.setdefault(normalise_name(name), []).append(entry)

    def match_mmsi(self, mmsi: int) -> Match | None:
        entry = self.by_mmsi.get(mmsi)
        if entry is None:
            return None
        return Match(entry, mmsi, (_listed(entry, "mmsi", mmsi),))

    def match_static(
        self,
        mmsi: int,
        *,
        imo: int | None,
        shipname: str | None,
        callsign: str | None,
        ship_type: int | None,
    ) -> list[Match]:
        """Every entry this static report matches, rejects, or may match."""
        if (listed := self.match_mmsi(mmsi)) is not None:
            return [listed]
        if imo is not None and (entry := self.by_imo.get(imo)) is not None:
            return [Match(entry, mmsi, (_listed(entry, "imo", imo),))]
        if not shipname:
            return []
        named = self.by_name.get(normalise_name(shipname), ())
        return [
            Match(entry, mmsi, _name_evidence(entry, mmsi, shipname, imo, callsign, ship_type))
            for entry in named
        ]


def _listed(entry: WatchlistEntry, kind: Literal["imo", "mmsi"], value: int) -> Listed:
    ident = entry.ids(kind)[str(value)]
    return Listed(kind, value, ident.source, ident.confidence)


def _name_evidence(
    entry: WatchlistEntry,
    mmsi: int,
    shipname: str,
    imo: int | None,
    callsign: str | None,
    ship_type: int | None,
) -> tuple[Evidence, ...]:
    """A name match, and what the rest of the static report says of it: a
    contradiction, or what agrees."""
    said = NameMatch(shipname, entry.name)
    flag, mid = flag_of(mmsi), mmsi // 1_000_000
    if imo is not None and (imo in entry.not_imo or (entry.imo is not None and imo != entry.imo)):
        return (said, OtherImo(imo))
    if flag is not None and entry.flag is not None and flag != entry.flag:
        return (said, OtherFlag(mid, flag, entry.flag))
    evidence: list[Evidence] = [said]
    if flag is not None and flag == entry.flag:
        evidence.append(FlagAgrees(mid, flag))
    if ship_type is not None and entry.ship_types and entry.ship_types[0] <= ship_type <= entry.ship_types[1]:
        evidence.append(ShipTypeAgrees(ship_type))
    if callsign and normalise_name(callsign) in {normalise_name(c) for c in entry.ids("callsign")}:
        evidence.append(CallSignAgrees(callsign))
    return tuple(evidence)


def load_watchlist(path: Path = DEFAULT_WATCHLIST) -> Watchlist:
    """Read the TOML watchlist; raise :class:`ConfigError` naming the file and entry."""
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"watchlist {path}: {exc.strerror or exc}", setting="detectors.watchlist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"watchlist {path}: not valid TOML: {exc}", setting="detectors.watchlist") from exc
    entries = []
    for number, raw in enumerate(doc.get("entry", []), 1):
        try:
            identifiers = tuple(
                Identifier(i["kind"], str(i["value"]), i.get("source", ""), i.get("confidence", "medium"))
                for i in raw.get("identifiers", [])
            )
            for ident in identifiers:
                if ident.kind not in ("imo", "mmsi", "callsign"):
                    raise ValueError(f"identifier kind {ident.kind!r} is not imo, mmsi or callsign")
                if ident.kind != "callsign" and not ident.value.isdigit():
                    raise ValueError(f"{ident.kind} {ident.value!r} is not a number")
            types = raw.get("ship_types")
            entries.append(
                WatchlistEntry(
                    name=str(raw["name"]),
                    aliases=tuple(str(a) for a in raw.get("aliases", [])),
                    flag=raw.get("flag"),
                    ship_types=(int(types[0]), int(types[1])) if types else None,
                    max_speed_kn=float(raw["max_speed_kn"]) if "max_speed_kn" in raw else None,
                    not_imo=frozenset(int(i) for i in raw.get("not_imo", [])),
                    notes=str(raw.get("notes", "")),
                    identifiers=identifiers,
                )
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ConfigError(
                f"watchlist {path}: entry {number}: {what}", setting="detectors.watchlist"
            ) from exc
    return Watchlist(entries)
