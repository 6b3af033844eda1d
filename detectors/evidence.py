"""Why a vessel is (or is not) a watched ship: each fact a small value.

A match carries its evidence; its level is decided from the evidence's roles,
and the words shown to people (``watchlist_matches.reasons``, ``aiswatch
watchlist``) are each fact's ``str()``. Nothing decides by reading the words.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Literal

MatchLevel = Literal["identified", "probable", "candidate", "rejected"]


class Role(enum.Enum):
    """What a fact does to a match."""

    #: A listed IMO or MMSI: the ship itself.
    IDENTIFIES = enum.auto()
    #: Another ship of the same name: the match is rejected.
    CONTRADICTS = enum.auto()
    #: A name or alias: a candidate.
    NAMES = enum.auto()
    #: The flag agrees: needed, not enough, to make a candidate probable.
    FLAG = enum.auto()
    #: With an agreeing flag, makes a candidate probable.
    CORROBORATES = enum.auto()


@dataclass(frozen=True)
class Evidence:
    role: ClassVar[Role]


@dataclass(frozen=True)
class Listed(Evidence):
    """The broadcast IMO or MMSI is one of the entry's identifiers."""

    role: ClassVar[Role] = Role.IDENTIFIES
    kind: Literal["imo", "mmsi"]
    value: int
    source: str
    confidence: str

    def __str__(self) -> str:
        return f"{self.kind.upper()} {self.value} listed ({self.source}, {self.confidence})"


@dataclass(frozen=True)
class NameMatch(Evidence):
    role: ClassVar[Role] = Role.NAMES
    #: As broadcast.
    shipname: str
    entry: str

    def __str__(self) -> str:
        return f"name {self.shipname!r} matches {self.entry}"


@dataclass(frozen=True)
class OtherImo(Evidence):
    """The broadcast IMO is not the entry's (or is listed as a namesake's)."""

    role: ClassVar[Role] = Role.CONTRADICTS
    imo: int

    def __str__(self) -> str:
        return f"but IMO {self.imo} is another ship"


@dataclass(frozen=True)
class OtherFlag(Evidence):
    """The MMSI's MID gives another flag than the entry's."""

    role: ClassVar[Role] = Role.CONTRADICTS
    mid: int
    flag: str
    expected: str

    def __str__(self) -> str:
        return f"but MID {self.mid} is {self.flag}, not {self.expected}"


@dataclass(frozen=True)
class FlagAgrees(Evidence):
    role: ClassVar[Role] = Role.FLAG
    mid: int
    flag: str

    def __str__(self) -> str:
        return f"flag {self.flag} from MID {self.mid}"


@dataclass(frozen=True)
class ShipTypeAgrees(Evidence):
    """The broadcast ship type is in the entry's range."""

    role: ClassVar[Role] = Role.CORROBORATES
    ship_type: int

    def __str__(self) -> str:
        return f"ship type {self.ship_type}"


@dataclass(frozen=True)
class CallSignAgrees(Evidence):
    """The broadcast call sign is one of the entry's."""

    role: ClassVar[Role] = Role.CORROBORATES
    callsign: str

    def __str__(self) -> str:
        return f"call sign {self.callsign}"


@dataclass(frozen=True)
class SeenInRegion(Evidence):
    """The track was inside a watched region or port (only the track can tell)."""

    role: ClassVar[Role] = Role.CORROBORATES

    def __str__(self) -> str:
        return "seen in a watched region"


def level_of(evidence: Iterable[Evidence]) -> MatchLevel:
    """Identified by a listed identifier; else rejected by a contradiction;
    else probable with an agreeing flag and a corroboration; else a candidate."""
    roles = {e.role for e in evidence}
    if Role.IDENTIFIES in roles:
        return "identified"
    if Role.CONTRADICTS in roles:
        return "rejected"
    if Role.FLAG in roles and Role.CORROBORATES in roles:
        return "probable"
    return "candidate"
