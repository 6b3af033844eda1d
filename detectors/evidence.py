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
    #: The fact in words, formatted from the fields.
    words: ClassVar[str]

    def __str__(self) -> str:
        return self.words.format_map(vars(self))


@dataclass(frozen=True)
class Listed(Evidence):
    """The broadcast IMO or MMSI is one of the entry's identifiers."""

    role = Role.IDENTIFIES
    kind: Literal["imo", "mmsi"]
    value: int
    source: str
    confidence: str

    def __str__(self) -> str:
        return f"{self.kind.upper()} {self.value} listed ({self.source}, {self.confidence})"


@dataclass(frozen=True)
class NameMatch(Evidence):
    """The broadcast name (as sent) is the entry's name or an alias."""

    role = Role.NAMES
    words = "name {shipname!r} matches {entry}"
    shipname: str
    entry: str


@dataclass(frozen=True)
class OtherImo(Evidence):
    """The broadcast IMO is not the entry's (or is listed as a namesake's)."""

    role = Role.CONTRADICTS
    words = "but IMO {imo} is another ship"
    imo: int


@dataclass(frozen=True)
class OtherFlag(Evidence):
    """The MMSI's MID gives another flag than the entry's."""

    role = Role.CONTRADICTS
    words = "but MID {mid} is {flag}, not {expected}"
    mid: int
    flag: str
    expected: str


@dataclass(frozen=True)
class FlagAgrees(Evidence):
    role = Role.FLAG
    words = "flag {flag} from MID {mid}"
    mid: int
    flag: str


@dataclass(frozen=True)
class ShipTypeAgrees(Evidence):
    """The broadcast ship type is in the entry's range."""

    role = Role.CORROBORATES
    words = "ship type {ship_type}"
    ship_type: int


@dataclass(frozen=True)
class CallSignAgrees(Evidence):
    """The broadcast call sign is one of the entry's."""

    role = Role.CORROBORATES
    words = "call sign {callsign}"
    callsign: str


@dataclass(frozen=True)
class SeenInRegion(Evidence):
    """The track was inside a watched region or port (only the track can tell)."""

    role = Role.CORROBORATES
    words = "seen in a watched region"


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
