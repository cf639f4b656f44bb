"""Guard: SQL lives in ``gateway/store/``, so the schema can change in one place.

Routes, services, ingest and scoring call store functions named for what they return; no module of
``gateway`` outside ``gateway/store/`` runs a statement (``.execute``, ``.executemany``), builds one
(``psycopg.sql``) or holds one as a string.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "gateway"
STORE = GATEWAY / "store"
# A string that starts like a statement (upper-case keyword, then a space): what the store's queries
# look like, and what no docstring or message here begins with.
_STATEMENT = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|LISTEN|NOTIFY|COPY)\s")
_RUNS_SQL = frozenset({"execute", "executemany"})


def sql_in(source: str) -> list[str]:
    """Where ``source`` runs, builds or holds SQL: one line per finding."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _RUNS_SQL
        ):
            found.append(f"line {node.lineno}: .{node.func.attr}(...)")
        elif isinstance(node, ast.ImportFrom) and node.module in {"psycopg", "psycopg.sql"}:
            if node.module == "psycopg.sql" or any(alias.name == "sql" for alias in node.names):
                found.append(f"line {node.lineno}: imports psycopg.sql")
        elif isinstance(node, ast.Import) and any(alias.name == "psycopg.sql" for alias in node.names):
            found.append(f"line {node.lineno}: imports psycopg.sql")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr == "sql"
            and isinstance(node.value, ast.Name)
            and node.value.id == "psycopg"
        ):
            found.append(f"line {node.lineno}: uses psycopg.sql")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _STATEMENT.match(node.value):
            found.append(f"line {node.lineno}: {node.value.strip()[:40]!r}")
    return found


def test_no_module_of_the_gateway_outside_the_store_runs_sql() -> None:
    offending = [
        f"{path.relative_to(ROOT)} {finding}"
        for path in sorted(GATEWAY.rglob("*.py"))
        if STORE not in path.parents
        for finding in sql_in(path.read_text(encoding="utf-8"))
    ]
    assert offending == []


def test_the_guard_sees_a_statement_run_built_or_held() -> None:
    source = (
        "from psycopg import sql\n"
        "QUERY = 'SELECT 1 FROM scores'\n"
        "def f(conn):\n"
        "    conn.execute(sql.SQL('LISTEN {}'))\n"
        "    '''Update the scores.'''\n"
        "    return psycopg.sql.Identifier('scores')\n"
    )
    assert sql_in(source) == [
        "line 1: imports psycopg.sql",
        "line 2: 'SELECT 1 FROM scores'",
        "line 4: .execute(...)",
        "line 4: 'LISTEN {}'",
        "line 6: uses psycopg.sql",
    ]
