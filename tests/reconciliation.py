"""The reconciliation every fault test ends with: sent, stored, duplicated, lost, quarantined.

A fault test calls ``reconcile`` once its stream has settled; the figures come from PostgreSQL itself
(not from any counter of the code under test) and are kept for the table that ``make faults`` prints at
the end of the run (``tests/conftest.py``, ``pytest_terminal_summary``).

- sent: distinct readings the devices (or the test's hubs) sent, good ones only;
- stored: those of them found in ``observations``;
- duplicated: rows beyond one per reading (municipality, device, identifier) among them;
- lost: sent and not stored;
- quarantined: rows in ``quarantine`` and ``dead_letters`` (what the fault's poison came to).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class Reconciliation:
    fault: str
    sent: int
    stored: int
    duplicated: int
    lost: int
    quarantined: int


RESULTS: list[Reconciliation] = []


def reconcile(database_url: str, fault: str, sent: Iterable[str]) -> Reconciliation:
    """Count what became of the readings with identifiers ``sent``; record the line for the table."""
    wanted = set(sent)
    with psycopg.connect(database_url) as conn:
        rows: list[Any] = conn.execute(
            "SELECT identifier, count(*) FROM observations WHERE identifier = ANY(%s) GROUP BY identifier",
            (sorted(wanted),),
        ).fetchall()
        set_aside = conn.execute(
            "SELECT (SELECT count(*) FROM quarantine) + (SELECT count(*) FROM dead_letters)"
        ).fetchone()
    stored = {str(identifier) for identifier, _ in rows}
    result = Reconciliation(
        fault=fault,
        sent=len(wanted),
        stored=len(stored),
        duplicated=sum(int(n) - 1 for _, n in rows),
        lost=len(wanted - stored),
        quarantined=int(set_aside[0]) if set_aside else 0,
    )
    RESULTS.append(result)
    return result


def table(results: Iterable[Reconciliation]) -> list[str]:
    """The reconciliation table, a line per fault."""
    header = ("fault", "sent", "stored", "duplicated", "lost", "quarantined")
    lines = [(r.fault, r.sent, r.stored, r.duplicated, r.lost, r.quarantined) for r in results]
    width = max(len(header[0]), *(len(line[0]) for line in lines)) if lines else len(header[0])
    out = [f"{header[0]:<{width}}  " + "  ".join(f"{h:>11}" for h in header[1:])]
    out += [f"{line[0]:<{width}}  " + "  ".join(f"{v:>11}" for v in line[1:]) for line in lines]
    return out
