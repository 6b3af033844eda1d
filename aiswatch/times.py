"""Times as people type them, for the CLI and the HTTP API. Pure.

* ISO 8601 dates and times (``2024-03-14``, ``2024-03-14T06:00Z``); without a
  zone they are UTC;
* a month or a year (``2024-03``, ``2024``): its start, or its end when it
  bounds a range from above (``--until 2024-03`` means up to 1 April);
* relative to now: ``7d``, ``12h``, ``30m``, ``2w`` ago, and ``now``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

_RELATIVE: Final = re.compile(r"^(\d{1,6})\s*([mhdw])$")
_UNITS: Final = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PERIOD: Final = re.compile(r"^(\d{4})(?:-(\d{2}))?$")
HELP: Final = "ISO 8601 (2024-03-14, 2024-03-14T06:00Z), a month (2024-03) or ago (7d, 12h); UTC"


def parse_time(text: str, now: datetime, *, upper: bool = False) -> datetime:
    """``text`` as a UTC instant; ``upper`` for the end of a range (a month
    then means its end). Raises ValueError with what is accepted."""
    value = text.strip()
    if value.lower() == "now":
        return now
    relative = _RELATIVE.match(value.lower())
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    period = _PERIOD.match(value)
    if period:
        year, month = int(period.group(1)), period.group(2)
        if month is None:
            return datetime(year + 1 if upper else year, 1, 1, tzinfo=UTC)
        start = datetime(year, int(month), 1, tzinfo=UTC) if 1 <= int(month) <= 12 else None
        if start is None:
            raise ValueError(f"{text!r}: there is no month {month}")
        if not upper:
            return start
        return datetime(year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=UTC)
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time ({HELP})") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
