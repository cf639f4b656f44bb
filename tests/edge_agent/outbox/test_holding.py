"""The holding area for readings a full disk refused: arrival order, one row per identifier, and a
bound kept the way the outbox keeps its own (oldest non-critical first, then oldest critical)."""

from __future__ import annotations

import pytest

from edge_agent.outbox.holding import HoldingArea, PendingRow


def _row(name: str, *, critical: bool = False, size: int = 10) -> PendingRow:
    kind = "blood-pressure" if critical else "heart-rate"
    return PendingRow(name, 0.0, b"x" * size, kind, critical)


def _names(rows: list[PendingRow]) -> list[str]:
    return [row.identifier for row in rows]


def test_rows_come_out_oldest_first_and_stay_until_removed() -> None:
    area = HoldingArea(max_rows=10, max_bytes=1_000)
    assert area.add([_row("a"), _row("b", critical=True), _row("c")]) == []
    assert _names(area.oldest(2)) == ["a", "b"]
    assert len(area) == 3 and area.bytes == 30
    area.remove(area.oldest(2))
    assert _names(area.oldest(10)) == ["c"] and area.bytes == 10


def test_a_row_already_held_is_not_held_twice() -> None:
    area = HoldingArea(max_rows=10, max_bytes=1_000)
    area.add([_row("a"), _row("b")])
    area.add([_row("a"), _row("c")])
    assert _names(area.oldest(10)) == ["a", "b", "c"]


def test_past_the_row_bound_the_oldest_non_critical_go_first() -> None:
    area = HoldingArea(max_rows=3, max_bytes=1_000)
    evicted = area.add([_row("hr1"), _row("bp1", critical=True), _row("hr2"), _row("hr3"), _row("hr4")])
    assert _names(evicted) == ["hr1", "hr2"]
    assert _names(area.oldest(10)) == ["bp1", "hr3", "hr4"]


def test_with_only_critical_rows_left_the_oldest_critical_go() -> None:
    area = HoldingArea(max_rows=2, max_bytes=1_000)
    evicted = area.add([_row(f"bp{i}", critical=True) for i in range(4)])
    assert _names(evicted) == ["bp0", "bp1"]
    assert _names(area.oldest(10)) == ["bp2", "bp3"]


def test_the_byte_bound_evicts_until_the_held_json_fits() -> None:
    area = HoldingArea(max_rows=100, max_bytes=25)
    evicted = area.add([_row("a", size=10), _row("b", size=10, critical=True), _row("c", size=10)])
    assert _names(evicted) == ["a"] and area.bytes == 20


def test_progress_keeps_the_area_from_being_empty_until_written() -> None:
    area = HoldingArea(max_rows=10, max_bytes=1_000)
    assert area.empty
    area.progress["GLU1"] = 7
    assert not area.empty and len(area) == 0


def test_an_area_without_room_is_refused() -> None:
    with pytest.raises(ValueError):
        HoldingArea(max_rows=0, max_bytes=1_000)
