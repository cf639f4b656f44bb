"""Faults the tests inject into a real PostgreSQL: the database itself refuses what a test names."""

from __future__ import annotations

import psycopg


def refuse_quarantine(database_url: str, when: str) -> None:
    """Make the database refuse a quarantine row (a data exception, SQLSTATE 22023) ``when`` (an SQL
    condition on ``NEW``, the row) holds: a stand-in for whatever the next unforeseen poison is."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'invalid_parameter_value'; END $$"
        )
        conn.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT ON quarantine FOR EACH ROW WHEN ({when})"
            " EXECUTE FUNCTION refuse()"
        )
