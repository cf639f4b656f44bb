"""Migration 0017 on a quarantine that has rows already: each keeps its reason and payload, gets its code
(the reason's first word; 'other' when the reason names none), and is open for review; the review's
columns refuse a half-recorded review and an unknown resolution."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from gateway.store.migrate import MIGRATIONS_DIR, migrate


def test_rows_quarantined_before_the_migration_get_their_code_and_are_open(
    empty_database_url: str, tmp_path: Path
) -> None:
    for source in sorted(MIGRATIONS_DIR.glob("*.sql"))[:16]:
        shutil.copy(source, tmp_path)
    reasons = [
        "unknown-hub: hub hub9 is not enrolled in municipality 0101",
        "duplicate: reading r1 (effective x) is already stored with effective y (migration 0002)",
        "impossible-value: SpO2 140 % (entry 3, identifier OXI1-p1-spo2-1)",
        "a reason without a code: or with one later",
        "Not-A-Code: capitals are no code",
    ]
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        assert migrate(conn, tmp_path) == list(range(1, 17))
        for reason in reasons:
            conn.execute(
                "INSERT INTO quarantine (topic, municipality_id, hub_id, reason, payload)"
                " VALUES ('homewatch/v1/0101/hub9/observations', '0101', 'hub9', %s, '{}')",
                (reason,),
            )
        assert migrate(conn) == [17, *range(18, len(list(MIGRATIONS_DIR.glob("*.sql"))) + 1)]
        rows = conn.execute(
            "SELECT reason, code, resolved_at, resolution, reprocessed_from FROM quarantine ORDER BY id"
        ).fetchall()
        assert [(r[0], r[1]) for r in rows] == list(
            zip(reasons, ["unknown-hub", "duplicate", "impossible-value", "other", "other"], strict=True)
        )
        assert {r[2:] for r in rows} == {(None, None, None)}
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE quarantine SET resolution = 'dismissed' WHERE id = 1")  # no who, no when
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "UPDATE quarantine SET resolution = 'forgotten', resolved_at = now(), resolved_by = 'x'"
                " WHERE id = 1"
            )
