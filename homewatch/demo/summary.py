"""The demo's closing summary: what was sent, stored, rejected and alerted, and who ranks highest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from rich.table import Table

if TYPE_CHECKING:
    from gateway.server import GatewayServer
    from homewatch.demo.home import SimulatedHome


@dataclass(frozen=True, slots=True)
class RankedPatient:
    patient_id: str
    name: str
    municipality: str
    news2: int
    band: str
    deteriorating: bool  # the synthetic truth, shown so the demo can be judged
    reason: str


@dataclass(frozen=True, slots=True)
class DemoSummary:
    measurements_taken: int  # by the emulated devices
    readings_sent: int  # Observations the hubs delivered, confirmed by the gateway's receipts
    readings_stored: int  # rows in the database
    readings_rejected: int  # Observations the gateway refused (quarantined)
    alerts_raised: int
    patients_alerted: int
    deteriorating_alerted: int
    deteriorating_total: int
    top: tuple[RankedPatient, ...]


_TOP = """
SELECT DISTINCT ON (s.patient_id) s.patient_id, p.name, p.municipality_id, s.score, s.band,
       coalesce(s.detail->'reasons'->>0, '')
FROM scores s JOIN patients p ON p.id = s.patient_id AND p.municipality_id = s.municipality_id
ORDER BY s.patient_id, s.as_of DESC, s.id DESC
"""


def collect_summary(
    conn: psycopg.Connection[Any], homes: list[SimulatedHome], gateway: GatewayServer
) -> DemoSummary:
    truth = {home.patient.id: home.patient.deteriorating for home in homes}
    stored = conn.execute("SELECT count(*) FROM observations").fetchone()
    alerts = conn.execute("SELECT count(*), count(DISTINCT patient_id) FROM alerts").fetchone()
    alerted = {row[0] for row in conn.execute("SELECT DISTINCT patient_id FROM alerts")}
    latest = [
        RankedPatient(
            str(r[0]), str(r[1]), str(r[2]), int(r[3]), str(r[4]), truth.get(str(r[0]), False), str(r[5])
        )
        for r in conn.execute(_TOP)
    ]
    latest.sort(key=lambda r: (-r.news2, r.patient_id))
    counters = gateway.ingest.counters() if gateway.ingest else None
    return DemoSummary(
        measurements_taken=sum(h.stats.measurements_taken for h in homes),
        readings_sent=sum(h.agent.publisher.stats.observations_sent for h in homes),
        readings_stored=int(stored[0]) if stored else 0,
        readings_rejected=counters.observations_rejected if counters else 0,
        alerts_raised=int(alerts[0]) if alerts else 0,
        patients_alerted=int(alerts[1]) if alerts else 0,
        deteriorating_alerted=sum(1 for pid in alerted if truth.get(pid)),
        deteriorating_total=sum(truth.values()),
        top=tuple(latest[:5]),
    )


def summary_table(summary: DemoSummary) -> Table:
    table = Table(title="homewatch demo summary (SYNTHETIC data)", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("measurements taken by emulated devices", str(summary.measurements_taken))
    table.add_row("readings sent by hubs (confirmed by the gateway)", str(summary.readings_sent))
    table.add_row("readings stored", str(summary.readings_stored))
    table.add_row("readings rejected by the gateway", str(summary.readings_rejected))
    table.add_row("alerts raised", f"{summary.alerts_raised} ({summary.patients_alerted} patients)")
    table.add_row(
        "deteriorating patients alerted", f"{summary.deteriorating_alerted} of {summary.deteriorating_total}"
    )
    top = Table(title="five highest-risk patients (latest NEWS2)", title_justify="left")
    for column in ("patient", "municipality", "NEWS2", "band", "synthetic truth", "top reason"):
        top.add_column(column)
    for p in summary.top:
        top.add_row(
            f"{p.name} ({p.patient_id})",
            p.municipality,
            str(p.news2),
            p.band,
            "deteriorating" if p.deteriorating else "stable",
            p.reason,
        )
    outer = Table.grid()
    outer.add_row(table)
    outer.add_row(top)
    return outer
