"""Image versions of the form ``YYYYMMDD_NN``: the day of the build and that day's build number.

Versions order by day, then build number, so "newest" is unambiguous; the date must be a real
calendar date. ``latest`` is never a version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

_VERSION = re.compile(r"^(\d{4})(\d{2})(\d{2})_(\d{2})$")

MAX_BUILD = 99


@dataclass(frozen=True, slots=True, order=True)
class Version:
    day: date
    build: int

    def __post_init__(self) -> None:
        if not 0 <= self.build <= MAX_BUILD:
            raise ValueError(f"build number {self.build} is out of range 00..{MAX_BUILD}")

    @classmethod
    def parse(cls, tag: str) -> Version:
        """Parse ``20261127_01``; raise ValueError naming what is wrong."""
        match = _VERSION.fullmatch(tag)
        if match is None:
            raise ValueError(f"tag {tag!r} is not of the form YYYYMMDD_NN")
        year, month, day, build = (int(g) for g in match.groups())
        try:
            when = date(year, month, day)
        except ValueError:
            raise ValueError(f"tag {tag!r} does not start with a real calendar date") from None
        return cls(when, build)

    @classmethod
    def try_parse(cls, tag: str) -> Version | None:
        try:
            return cls.parse(tag)
        except ValueError:
            return None

    @classmethod
    def next_for(cls, day: date, existing: Iterable[Version]) -> Version:
        """The next version for ``day`` given the versions that already exist (any days).

        A day's first build is ``_01``; ``_00`` parses (the naming rule allows it) but is never issued.
        """
        builds = [v.build for v in existing if v.day == day]
        build = max(builds, default=0) + 1
        if build > MAX_BUILD:
            raise ValueError(f"no build numbers left for {day:%Y%m%d} (already at {MAX_BUILD})")
        return cls(day, build)

    @property
    def tag(self) -> str:
        return f"{self.day:%Y%m%d}_{self.build:02d}"

    def __str__(self) -> str:
        return self.tag
