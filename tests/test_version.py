"""Property tests for Version (``YYYYMMDD_NN``): parsing, ordering, the next build of a day."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.model.version import MAX_BUILD, Version

days = st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31))
builds = st.integers(min_value=0, max_value=MAX_BUILD)
versions = st.builds(Version, days, builds)


@given(versions)
def test_tag_round_trips(version: Version) -> None:
    assert Version.parse(str(version)) == version
    assert Version.parse(version.tag).tag == version.tag
    assert len(version.tag) == 11


@given(days, builds)
def test_parse_reads_date_and_build(day: date, build: int) -> None:
    version = Version.parse(f"{day:%Y%m%d}_{build:02d}")
    assert (version.day, version.build) == (day, build)


@given(versions, versions)
def test_ordering_is_date_then_build(a: Version, b: Version) -> None:
    assert (a < b) == ((a.day, a.build) < (b.day, b.build))
    assert (a == b) == ((a.day, a.build) == (b.day, b.build))
    # Same-width tags sort as text the way versions sort, so registries' tag lists order correctly too.
    assert (a < b) == (a.tag < b.tag)


@given(days, st.lists(versions, max_size=30))
def test_next_for_is_newer_than_every_build_of_that_day(day: date, existing: list[Version]) -> None:
    same_day = [v for v in existing if v.day == day]
    if any(v.build == MAX_BUILD for v in same_day):
        with pytest.raises(ValueError, match="no build numbers left"):
            Version.next_for(day, existing)
        return
    following = Version.next_for(day, existing)
    assert following.day == day
    assert all(following > v for v in same_day)
    assert following.build == max((v.build for v in same_day), default=0) + 1
    assert following.build >= 1  # _00 is never issued


@given(st.integers(1000, 9999), st.integers(0, 99), st.integers(0, 99), builds)
def test_invalid_calendar_dates_are_rejected(year: int, month: int, day: int, build: int) -> None:
    tag = f"{year:04d}{month:02d}{day:02d}_{build:02d}"
    try:
        date(year, month, day)
    except ValueError:
        with pytest.raises(ValueError, match="real calendar date"):
            Version.parse(tag)
        assert Version.try_parse(tag) is None
    else:
        assert Version.parse(tag).day == date(year, month, day)


@pytest.mark.parametrize(
    "tag", ["latest", "20261127", "20261127_1", "20261127_001", "2026-11-27_01", " 20261127_01", "20261127_01\n", ""]
)
def test_malformed_tags_are_rejected(tag: str) -> None:
    with pytest.raises(ValueError, match="YYYYMMDD_NN"):
        Version.parse(tag)
    assert Version.try_parse(tag) is None


def test_examples() -> None:
    assert Version.parse("20261127_01") < Version.parse("20261127_02") < Version.parse("20261128_00")
    assert Version.parse("20240229_01").day == date(2024, 2, 29)
    with pytest.raises(ValueError, match="real calendar date"):
        Version.parse("20261332_01")
    with pytest.raises(ValueError, match="real calendar date"):
        Version.parse("20230229_01")
    assert Version.next_for(date(2026, 11, 27), []).tag == "20261127_01"
    with pytest.raises(ValueError, match="out of range"):
        Version(date(2026, 11, 27), 100)
