"""The demo's closing summary: what was sent, stored, rejected, alerted and assessed for 30-day
admission risk, who ranks highest, and the alert e-mails the demo's SMTP sink received, by recipient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from rich.table import Table

from gateway.alerts.admission_risk import METHOD as ADMISSION_RISK

if TYPE_CHECKING:
    from gateway.service import Gateway
    from homewatch.demo.home import SimulatedHome
    from homewatch.demo.mail import MailSink


@dataclass(frozen=True, slots=True)
class RankedPatient:
    patient_id: str
    name: str
    municipality: str
    news2: int
    band: str
    deteriorating: bool  # the synthetic truth, shown so the demo can be judged
    reason: str
    admission_risk: float | None  # the latest 30-day admission-risk probability, if scored


@dataclass(frozen=True, slots=True)
class DemoSummary:
    measurements_taken: int  # by the emulated devices
    readings_sent: int  # Observations the hubs delivered, confirmed by the gateway's receipts
    readings_stored: int  # rows in the database
    readings_rejected: int  # Observations the gateway refused (quarantined)
    readings_device_error: int  # stored without a value: the hub found the device's number impossible
    alerts_raised: int
    patients_alerted: int
    admission_risk_assessments: int  # 30-day admission-risk RiskAssessments stored
    patients_risk_assessed: int
    deteriorating_alerted: int
    deteriorating_total: int
    top: tuple[RankedPatient, ...]
    # The alert e-mails the demo's SMTP sink received: (address, how many), by address; and its page.
    emails: tuple[tuple[str, int], ...] = ()
    mail_url: str | None = None

    @property
    def emails_delivered(self) -> int:
        """Deliveries to the sink: a message to two addresses counts twice."""
        return sum(count for _, count in self.emails)


# Each patient's latest NEWS2, with their latest 30-day admission risk beside it.
_TOP = """
SELECT DISTINCT ON (s.patient_id) s.patient_id, p.name, p.municipality_id, s.score, s.band,
       coalesce(s.detail->'reasons'->>0, ''),
       (SELECT r.score FROM scores r WHERE r.municipality_id = s.municipality_id
          AND r.patient_id = s.patient_id AND r.method = %(risk)s ORDER BY r.as_of DESC, r.id DESC LIMIT 1)
FROM scores s JOIN patients p ON p.id = s.patient_id AND p.municipality_id = s.municipality_id
WHERE s.method = 'news2'
ORDER BY s.patient_id, s.as_of DESC, s.id DESC
"""


def everyone_risk_scored(conn: psycopg.Connection[Any]) -> bool:
    """Whether some patient has readings and every patient with readings has a 30-day admission risk."""
    row = conn.execute(
        "SELECT (SELECT count(DISTINCT patient_id) FROM observations),"
        " (SELECT count(DISTINCT patient_id) FROM scores WHERE method = %s)",
        (ADMISSION_RISK,),
    ).fetchone()
    return row is not None and 0 < int(row[0]) <= int(row[1])


def collect_summary(
    conn: psycopg.Connection[Any],
    homes: list[SimulatedHome],
    gateway: Gateway,
    mail: MailSink | None = None,
) -> DemoSummary:
    truth = {home.patient.id: home.patient.deteriorating for home in homes}
    stored = conn.execute("SELECT count(*) FROM observations").fetchone()
    device_error = conn.execute(
        "SELECT count(*) FROM observations WHERE resource -> 'dataAbsentReason' -> 'coding' -> 0 ->> 'code'"
        " = 'error'"
    ).fetchone()
    alerts = conn.execute("SELECT count(*), count(DISTINCT patient_id) FROM alerts").fetchone()
    alerted = {row[0] for row in conn.execute("SELECT DISTINCT patient_id FROM alerts")}
    assessed = conn.execute(
        "SELECT count(*), count(DISTINCT patient_id) FROM scores WHERE method = %s", (ADMISSION_RISK,)
    ).fetchone()
    latest = [
        RankedPatient(
            str(r[0]),
            str(r[1]),
            str(r[2]),
            int(r[3]),
            str(r[4]),
            truth.get(str(r[0]), False),
            str(r[5]),
            None if r[6] is None else float(r[6]),
        )
        for r in conn.execute(_TOP, {"risk": ADMISSION_RISK})
    ]
    latest.sort(key=lambda r: (-r.news2, r.patient_id))
    return DemoSummary(
        measurements_taken=sum(h.stats.measurements_taken for h in homes),
        readings_sent=sum(h.agent.publisher.stats.observations_sent for h in homes),
        readings_stored=int(stored[0]) if stored else 0,
        readings_rejected=gateway.ingest_counts().rejected,
        readings_device_error=int(device_error[0]) if device_error else 0,
        alerts_raised=int(alerts[0]) if alerts else 0,
        patients_alerted=int(alerts[1]) if alerts else 0,
        admission_risk_assessments=int(assessed[0]) if assessed else 0,
        patients_risk_assessed=int(assessed[1]) if assessed else 0,
        deteriorating_alerted=sum(1 for pid in alerted if truth.get(pid)),
        deteriorating_total=sum(truth.values()),
        top=tuple(latest[:5]),
        emails=() if mail is None else tuple(mail.by_recipient().items()),
        mail_url=None if mail is None else mail.url,
    )


def summary_table(summary: DemoSummary) -> Table:
    table = Table(title="homewatch demo summary (SYNTHETIC data)", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("measurements taken by emulated devices", str(summary.measurements_taken))
    table.add_row("readings sent by hubs (confirmed by the gateway)", str(summary.readings_sent))
    table.add_row("readings stored", str(summary.readings_stored))
    table.add_row("  of them without a value (device error)", str(summary.readings_device_error))
    table.add_row("readings rejected by the gateway", str(summary.readings_rejected))
    table.add_row("alerts raised", f"{summary.alerts_raised} ({summary.patients_alerted} patients)")
    table.add_row(
        "deteriorating patients alerted", f"{summary.deteriorating_alerted} of {summary.deteriorating_total}"
    )
    table.add_row(
        "30-day admission-risk assessments",
        f"{summary.admission_risk_assessments} ({summary.patients_risk_assessed} patients)",
    )
    if summary.mail_url is not None:
        table.add_row(f"alert e-mails delivered (see {summary.mail_url}/)", str(summary.emails_delivered))
        for address, count in summary.emails:
            table.add_row(f"  to {address}", str(count))
    top = Table(title="five highest-risk patients (latest NEWS2)", title_justify="left")
    for column in (
        "patient",
        "municipality",
        "NEWS2",
        "band",
        "30-day risk",
        "synthetic truth",
        "top reason",
    ):
        top.add_column(column)
    for p in summary.top:
        top.add_row(
            f"{p.name} ({p.patient_id})",
            p.municipality,
            str(p.news2),
            p.band,
            "-" if p.admission_risk is None else f"{p.admission_risk:.0%}",
            "deteriorating" if p.deteriorating else "stable",
            p.reason,
        )
    outer = Table.grid()
    outer.add_row(table)
    outer.add_row(top)
    return outer
