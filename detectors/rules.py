"""The thresholds the detectors work by, in one frozen record.

Defaults follow DOMAIN.md: the reporting intervals of ITU-R M.1371 set what
silence is unusual (a moving Class A ship reports every 10 s, a moored one
every 3 min), and the gap thresholds are hours, shorter near the watched
ports than elsewhere, because a whole dark leg Rajin - Vostochny takes 11 h:
Global Fishing Watch's 12 h would miss it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class DetectorRules:
    #: A fix that needs more than this from both neighbours is implausible.
    max_plausible_speed_kn: float = 40.0
    #: Position noise forgiven before a jump counts (two receivers, GPS jitter).
    position_slack_nm: float = 0.25
    #: A fix with no successor is judged alone after this much (event) time.
    confirm_after_s: float = 600.0
    #: Stopped below ``stop_below_kn``, moving again above ``move_above_kn``.
    stop_below_kn: float = 0.5
    move_above_kn: float = 2.0
    #: A port call needs the ship stopped in the port zone this long.
    min_port_stay_h: float = 1.0
    #: Within this distance of a watched port, the shorter gap thresholds apply.
    near_port_nm: float = 100.0
    near_port_underway_gap_h: float = 1.0
    near_port_moored_gap_h: float = 3.0
    underway_gap_h: float = 6.0
    moored_gap_h: float = 12.0
    #: Speed assumed for "could it have reached a port" when the watchlist has none.
    default_max_speed_kn: float = 14.0

    @property
    def shortest_gap_h(self) -> float:
        return min(
            self.near_port_underway_gap_h, self.near_port_moored_gap_h, self.underway_gap_h, self.moored_gap_h
        )
