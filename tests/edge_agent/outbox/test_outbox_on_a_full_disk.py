"""The outbox on a disk that fills up (a real tmpfs, or SQLite's own page limit: ``small_disk``).

A reading the disk refuses waits in memory, in order, and is written when space returns; a confirmed
row whose deletion the disk refuses is deleted then; past the holding area's bound the oldest
non-critical readings go first, counted and logged like the outbox's own evictions. Nothing raises into
the device sessions or the publisher's network thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from delivery.small_disk import MECHANISMS, SmallDisk, small_disk
from outbox_readings import observation

from edge_agent.outbox import Outbox

MiB = 1 << 20


@pytest.fixture(params=MECHANISMS)
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(request.param, tmp_path, size=8 * MiB) as disk:
        yield disk


def _outbox(disk: SmallDisk, **bounds: int) -> Outbox:
    box = Outbox(disk.path / "outbox.sqlite3", **bounds)
    disk.attach(box)
    return box


def _ids(observations: list[dict[str, Any]]) -> list[str]:
    return [str(o["identifier"][0]["value"]) for o in observations]


def _heart_rates(first: int, count: int) -> list[dict[str, Any]]:
    return [observation("heart-rate", i) for i in range(first, first + count)]


def test_readings_the_full_disk_refuses_wait_in_memory_and_are_written_when_space_returns(
    disk: SmallDisk, caplog: pytest.LogCaptureFixture
) -> None:
    box = _outbox(disk)
    try:
        box.put(_heart_rates(0, 10))
        disk.fill(leave=0)
        refused = _heart_rates(10, 20)
        with caplog.at_level(logging.WARNING, logger="edge_agent.outbox"):
            assert box.put(refused) == 20  # taken: held in memory, not raised, not lost
            assert box.put(_heart_rates(30, 5)) == 5
        assert box.full and box.held == 25
        assert box.depth() == 35  # waiting to be delivered, 25 of them only in memory
        (warning,) = caplog.records  # one line when the disk fills, not one per reading
        assert "disk full" in warning.message and "held in memory" in warning.message
        assert not box.retry(force=True)  # still no room: still held
        assert box.held == 25

        disk.free()
        assert box.retry(force=True)
        assert not box.full and box.held == 0 and box.depth() == 35
        assert [r.identifier for r in box.after(0, 100)] == _ids(_heart_rates(0, 35))  # in order
    finally:
        box.close()


def test_confirmed_rows_are_deleted_once_the_disk_has_room_and_never_sent_again(disk: SmallDisk) -> None:
    box = _outbox(disk)
    try:
        box.put(_heart_rates(0, 40))
        confirmed = [row.seq for row in box.after(0, 25)]
        disk.fill(leave=0)
        box.put(_heart_rates(40, 20))
        assert box.full
        box.delete(confirmed)  # the gateway's receipt came: must not raise, whatever the disk says
        assert box.depth() == 15 + 20
        # Still on disk, but the drain never reads them again.
        assert [r.identifier for r in box.after(0, 100)] == _ids(_heart_rates(25, 15))
        disk.free()
        assert box.retry(force=True)
        assert [r.identifier for r in box.after(0, 100)] == _ids(_heart_rates(25, 35))
        assert box.depth() == 35
    finally:
        box.close()


def test_held_readings_past_their_bound_evict_the_oldest_non_critical_first_counted_and_logged(
    disk: SmallDisk, caplog: pytest.LogCaptureFixture
) -> None:
    path = disk.path / "outbox.sqlite3"
    box = _outbox(disk, hold_max_rows=5)
    try:
        box.put(_heart_rates(0, 3))
        disk.fill(leave=0)
        held = [
            observation("heart-rate", 10),
            observation("blood-pressure", 11),
            observation("heart-rate", 12),
            observation("body-weight", 13),
            observation("heart-rate", 14),
            observation("heart-rate", 15),
            observation("blood-pressure", 16),
        ]
        with caplog.at_level(logging.WARNING, logger="edge_agent.outbox"):
            box.put(held)
        assert box.held == 5
        assert box.evicted == {"heart-rate": 2}  # the two oldest heart rates: counted at once
        assert any("evicted 2" in r.message and r.levelno == logging.WARNING for r in caplog.records)

        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="edge_agent.outbox"):
            box.put([observation("blood-pressure", i) for i in range(20, 25)])
        # then, with nothing non-critical left, the oldest critical ones
        assert box.evicted == {"heart-rate": 4, "blood-pressure": 2, "body-weight": 1}
        assert any(r.levelno == logging.ERROR and "critical" in r.message for r in caplog.records)

        disk.free()
        assert box.retry(force=True)
        kept = [observation("blood-pressure", i) for i in range(20, 25)]
        assert [r.identifier for r in box.after(0, 100)] == _ids(_heart_rates(0, 3) + kept)
    finally:
        box.close()
    reopened = Outbox(path)
    try:
        assert reopened.evicted == {"heart-rate": 4, "blood-pressure": 2, "body-weight": 1}  # on disk
    finally:
        reopened.close()


def test_history_progress_is_written_with_its_held_readings_not_before(disk: SmallDisk) -> None:
    box = _outbox(disk)
    try:
        box.put(_heart_rates(0, 10), progress=("GLU1", 3))
        disk.fill(leave=0)
        box.put(_heart_rates(10, 20), progress=("GLU1", 7))
        assert box.progress("GLU1") == 3  # on disk: the device is asked again from 4 after a crash
        disk.free()
        assert box.retry(force=True)
        assert box.progress("GLU1") == 7
    finally:
        box.close()


def test_closing_while_the_disk_is_still_full_names_the_readings_lost(
    disk: SmallDisk, caplog: pytest.LogCaptureFixture
) -> None:
    box = _outbox(disk)
    box.put(_heart_rates(0, 10))
    disk.fill(leave=0)
    box.put([*_heart_rates(10, 3), observation("body-weight", 20)])
    with caplog.at_level(logging.ERROR, logger="edge_agent.outbox"):
        box.close()  # a hub stopping: memory is all they had
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "4 reading(s) held in memory are lost" in error.message
    assert "body-weight 1, heart-rate 3" in error.message


def test_a_hub_restarted_on_a_full_disk_takes_readings_and_writes_them_after_the_stored_ones(
    disk: SmallDisk,
) -> None:
    """On a full tmpfs SQLite cannot even open the file (no room for the WAL's shared memory): the
    outbox starts anyway, holds what comes, and opens the file once there is room."""
    box = _outbox(disk)
    box.put(_heart_rates(0, 10))
    box.close()
    if disk.mechanism == "tmpfs":
        disk.fill(leave=0)
    box = _outbox(disk)  # the hub restarted
    try:
        if disk.mechanism == "max-page-count":
            disk.fill(leave=0)
        assert box.put(_heart_rates(10, 20)) == 20
        assert box.full and box.held == 20
        disk.free()
        assert box.retry(force=True)
        assert [r.identifier for r in box.after(0, 100)] == _ids(_heart_rates(0, 30))
    finally:
        box.close()


def test_deleting_confirmed_rows_frees_pages_that_held_readings_then_take(tmp_path: Path) -> None:
    """The drain makes room by itself where a deletion can still commit: under SQLite's page limit
    (on a full tmpfs the WAL cannot grow for the deletion either; then only freed disk space helps)."""
    with small_disk("max-page-count", tmp_path, size=0) as disk:
        box = _outbox(disk)
        try:
            box.put(_heart_rates(0, 60))
            disk.fill(leave=0)
            box.put(_heart_rates(60, 20))
            assert box.held == 20
            box.delete([row.seq for row in box.after(0, 60)])  # the gateway confirmed them
            assert box.retry(force=True)  # into the freed pages; the limit is unchanged
            assert box.held == 0 and not box.full
            assert [r.identifier for r in box.after(0, 100)] == _ids(_heart_rates(60, 20))
        finally:
            box.close()
