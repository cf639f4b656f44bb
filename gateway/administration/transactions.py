"""The administration layer's one transaction rule: commit before the broker hears of a change."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg


@contextmanager
def committed(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """A transaction, committed before the broker hears of it when the caller's connection is not in
    autocommit (what the broker is told must be what the gateway's other connections read)."""
    with conn.transaction():
        yield
    if not conn.autocommit:
        conn.commit()
