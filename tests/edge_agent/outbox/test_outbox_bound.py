"""The outbox is bounded: when full it evicts the oldest non-critical readings first, critical ones last,
and never silently (counted by kind, logged; an error when critical readings go)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import orjson
import pytest
from outbox_readings import observation

from edge_agent.outbox import Outbox, is_critical, observation_kind
from edge_agent.outbox.priority import CRITICAL_KINDS, NON_CRITICAL_KINDS
from fhir_contract.terminology import reading_types


def _kinds(box: Outbox) -> list[str]:
    return [observation_kind(orjson.loads(r.resource)) for r in box.after(0, 10_000)]


def test_every_contract_kind_is_classified_exactly_once() -> None:
    assert not CRITICAL_KINDS & NON_CRITICAL_KINDS
    assert set(reading_types()) == CRITICAL_KINDS | NON_CRITICAL_KINDS


def test_kind_is_read_from_the_code_including_the_supplemental_type() -> None:
    assert observation_kind(observation("spo2", 0)) == "spo2"
    assert observation_kind(observation("spo2-fast", 0)) == "spo2-fast"
    assert observation_kind(observation("blood-pressure", 0)) == "blood-pressure"
    assert observation_kind({"resourceType": "Observation"}) == "unknown"
    assert is_critical("unknown") and is_critical("spo2") and not is_critical("spo2-fast")


def test_preliminary_readings_go_before_any_critical_reading(tmp_path: Path) -> None:
    """A cuff's pressure while it inflates is never worth more than a final reading."""
    inflating = observation("blood-pressure", 0)
    inflating["status"] = "preliminary"
    inflating["identifier"][0]["value"] += "-preliminary"
    assert observation_kind(inflating) == "blood-pressure-preliminary"
    assert not is_critical("blood-pressure-preliminary") and is_critical("blood-pressure")
    box = Outbox(tmp_path / "o.sqlite3", max_rows=2)
    box.put([observation("spo2", 1), inflating])
    box.put([observation("blood-pressure", 2)])
    assert _kinds(box) == ["spo2", "blood-pressure"]
    assert box.evicted == {"blood-pressure-preliminary": 1}
    box.close()


def test_full_outbox_evicts_oldest_non_critical_first_and_counts_by_kind(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    box = Outbox(tmp_path / "o.sqlite3", max_rows=10)
    box.put([observation("blood-pressure", 0), observation("heart-rate", 1), observation("rr-interval", 2)])
    box.put([observation("heart-rate", i) for i in range(3, 10)])
    assert box.depth() == 10 and box.evicted == {}
    with caplog.at_level(logging.WARNING, logger="edge_agent.outbox.sqlite_outbox"):
        assert box.put([observation("body-weight", 10), observation("spo2", 11)]) == 2
    assert box.depth() == 10
    kinds = _kinds(box)
    assert kinds[0] == "blood-pressure"  # older than what went, but critical
    assert kinds[1:] == ["heart-rate"] * 7 + ["body-weight", "spo2"]  # the two oldest non-critical went
    assert box.evicted == {"heart-rate": 1, "rr-interval": 1}
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "evicted 2 oldest non-critical" in caplog.text and "rr-interval 1" in caplog.text
    box.close()


def test_only_critical_left_evicts_oldest_critical_and_logs_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    box = Outbox(tmp_path / "o.sqlite3", max_rows=3)
    box.put([observation("spo2", i) for i in range(3)])
    with caplog.at_level(logging.WARNING, logger="edge_agent.outbox.sqlite_outbox"):
        box.put([observation("battery-level", 3), observation("body-temperature", 4)])
    # the new battery reading is the only non-critical row, so it goes first; then the oldest SpO2
    assert _kinds(box) == ["spo2", "spo2", "body-temperature"]
    assert box.evicted == {"battery-level": 1, "spo2": 1}
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert "critical" in caplog.records[0].getMessage()
    box.close()


def test_byte_bound_evicts_until_the_waiting_json_fits(tmp_path: Path) -> None:
    size = len(orjson.dumps(observation("heart-rate", 0)))
    box = Outbox(tmp_path / "o.sqlite3", max_bytes=size * 5 + size // 2)
    box.put([observation("heart-rate", i) for i in range(20)])
    assert box.depth() == 5 and box.size_bytes() <= box.max_bytes
    assert box.evicted == {"heart-rate": 15}
    box.close()


def test_eviction_counts_and_totals_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = Outbox(path, max_rows=4)
    box.put([observation("heart-rate", i) for i in range(6)])
    box.delete([r.seq for r in box.after(0, 1)])
    total = box.size_bytes()
    box.close()
    reopened = Outbox(path, max_rows=4)
    assert reopened.depth() == 3 and reopened.size_bytes() == total
    assert reopened.evicted == {"heart-rate": 2}
    reopened.close()


def test_outbox_from_before_the_bound_is_migrated_with_its_kinds(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, identifier TEXT NOT NULL UNIQUE,"
        " created_at REAL NOT NULL, resource BLOB NOT NULL)"
    )
    for i, kind in enumerate(["heart-rate", "spo2", "heart-rate"]):
        obs = observation(kind, i)
        old.execute(
            "INSERT INTO outbox (identifier, created_at, resource) VALUES (?, 0, ?)",
            (obs["identifier"][0]["value"], orjson.dumps(obs)),
        )
    old.commit()
    old.close()
    box = Outbox(path, max_rows=3)
    box.put([observation("body-weight", 9)])
    assert _kinds(box) == ["spo2", "heart-rate", "body-weight"]
    assert box.evicted == {"heart-rate": 1}
    box.close()


def test_duplicates_do_not_count_against_the_bound(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", max_rows=3)
    readings = [observation("heart-rate", i) for i in range(3)]
    box.put(readings)
    assert box.put(readings) == 0
    assert box.depth() == 3 and box.evicted == {}
    box.close()
