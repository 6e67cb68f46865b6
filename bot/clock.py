"""The one source of "now": Asia/Seoul, replaceable by a fixed clock in tests."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

SEOUL = ZoneInfo("Asia/Seoul")


class Clock:
    """Wall-clock time in Asia/Seoul."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in Asia/Seoul."""
        return datetime.now(SEOUL)

    def today(self):
        """Today's date in Asia/Seoul."""
        return self.now().date()


@dataclass
class FixedClock(Clock):
    """A clock that stands still (tests, `HELPDESK_NOW`); `advance` moves it on."""

    fixed: datetime

    def now(self) -> datetime:
        return self.fixed.astimezone(SEOUL)

    def advance(self, **delta: float) -> None:
        """Move the clock forward by `timedelta(**delta)`."""
        self.fixed = self.fixed + timedelta(**delta)


def parse_instant(text: str) -> datetime:
    """Parse ISO-8601; a bare date means the end of that day in Asia/Seoul; naive times are Seoul time."""
    text = text.strip()
    if len(text) == 10:
        day = datetime.fromisoformat(text)
        return day.replace(hour=23, minute=59, second=59, tzinfo=SEOUL)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SEOUL)
    return moment.astimezone(SEOUL)


def to_iso(moment: datetime) -> str:
    """ISO-8601 in Asia/Seoul, seconds precision."""
    return moment.astimezone(SEOUL).isoformat(timespec="seconds")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
