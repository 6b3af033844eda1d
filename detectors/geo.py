"""Distances on the Earth, in nautical miles and kilometres."""

from __future__ import annotations

from math import asin, cos, radians, sin, sqrt
from typing import Final

EARTH_RADIUS_NM: Final = 3440.065
#: Kilometres per degree of latitude (and of longitude at the equator).
KM_PER_DEGREE: Final = 111.32


def distance_nm(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), a lower bound on the sea route."""
    phi1, phi2 = radians(lat1), radians(lat2)
    dphi = phi2 - phi1
    dlam = radians(lon2 - lon1)
    h = sin(dphi / 2) ** 2 + cos(phi1) * cos(phi2) * sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_NM * asin(min(1.0, sqrt(h)))


class LocalFrame:
    """An equirectangular projection to kilometres around a reference point:
    exact enough for a port zone a few tens of kilometres across."""

    __slots__ = ("kx", "lat0", "lon0")

    def __init__(self, lat0: float, lon0: float) -> None:
        self.lat0 = lat0
        self.lon0 = lon0
        self.kx = KM_PER_DEGREE * cos(radians(lat0))

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * KM_PER_DEGREE
