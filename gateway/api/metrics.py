"""``GET /metrics``: ingest counters, and alerts and their deliveries, in the Prometheus text exposition
format (version 0.0.4).

Alerts and deliveries are read from their tables at each scrape (``gateway.store.alert_admin``): open
alerts by municipality, kind and severity, deliveries by channel and status, and how old the oldest
pending delivery is and how far past its time the most overdue one is (a dispatcher that stopped shows
as a growing number while everything else looks calm).

Where the numbers live: each ingest worker adds to its own row of ``ingest_metrics`` (and
``ingest_rejections``) in the same transaction that stores its batch (``gateway.ingest.mqtt_ingest``).
That was chosen over prometheus_client's multiprocess mode because:

- the counts are exactly what was committed: a worker killed mid-batch counts nothing for it, and its
  redelivered copy is counted once it is stored; files of a multiprocess registry would count work
  whose transaction then rolled back;
- workers may run on several hosts (that is how ingest scales), and any gateway process answers for
  all of them, whereas multiprocess mode sums the files of one host's processes only;
- counters survive worker restarts without a shared folder to clean up, and no dependency is added.
One row per worker means workers never wait on each other's row lock; the cost is one upsert per
batch (a batch is up to 200 messages).

Authentication: the output holds worker names, rejection codes and counts, never patient data, but it
still tells an outsider how busy and how broken the service is. The route asks for
``Authorization: Bearer <HOMEWATCH_METRICS_TOKEN>`` (what a Prometheus scrape config sends). Without a
metrics token it is open in development only; in production it then refuses every request.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from gateway.api.clock import ui_now
from gateway.api.deps import DbDep, SettingsDep
from gateway.settings import GatewaySettings
from gateway.store.alert_admin import AlertMetrics, alert_metrics
from gateway.store.ingest_metrics import WorkerMetrics, rejection_counts, worker_counters

router = APIRouter(tags=["metrics"])

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# name, type, help, the WorkerMetrics field
_PER_WORKER = (
    ("homewatch_ingest_messages_received_total", "counter",
     "MQTT messages in committed ingest batches (redeliveries included).", "messages_received"),
    ("homewatch_ingest_observations_stored_total", "counter",
     "Observations stored as new rows.", "observations_stored"),
    ("homewatch_ingest_duplicates_total", "counter",
     "Observations already stored (a redelivered or resent reading).", "duplicates"),
    ("homewatch_ingest_batches_total", "counter", "Committed ingest batches.", "batches"),
    ("homewatch_ingest_lag_seconds_last_max", "gauge",
     "Largest lag of the worker's last batch: message arrival at the worker to its store.",
     "lag_seconds_last_max"),
)  # fmt: skip


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def render_metrics(workers: Iterable[WorkerMetrics], rejections: Iterable[tuple[str, str, int]]) -> str:
    """The exposition text for the workers' rows and their ``(worker, reason, count)`` rejections."""
    rows = sorted(workers, key=lambda w: w.worker)
    lines: list[str] = []
    for name, kind, help_text, attribute in _PER_WORKER:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines += [f'{name}{{worker="{_label(w.worker)}"}} {_number(getattr(w, attribute))}' for w in rows]
    name = "homewatch_ingest_lag_seconds"
    lines += [
        f"# HELP {name} Seconds from a message's arrival at the worker to the store of its batch.",
        f"# TYPE {name} summary",
    ]
    for w in rows:
        lines.append(f'{name}_sum{{worker="{_label(w.worker)}"}} {_number(w.lag_seconds_sum)}')
        lines.append(f'{name}_count{{worker="{_label(w.worker)}"}} {w.lag_seconds_count}')
    name = "homewatch_ingest_observations_rejected_total"
    lines += [
        f"# HELP {name} Rejections by reason (an Observation, or a whole message when it is unreadable).",
        f"# TYPE {name} counter",
    ]
    for worker, reason, count in sorted(rejections):
        lines.append(f'{name}{{worker="{_label(worker)}",reason="{_label(reason)}"}} {count}')
    return "\n".join(lines) + "\n"


def render_alert_metrics(m: AlertMetrics) -> str:
    """The exposition text of alerts and their delivery: counts and ages, never a patient id."""
    name = "homewatch_alerts_open"
    lines = [
        f"# HELP {name} Alerts raised and not yet acknowledged, snoozed or resolved (none: no series).",
        f"# TYPE {name} gauge",
    ]
    lines += [
        f'{name}{{municipality="{_label(a.municipality_id)}",kind="{_label(a.kind)}",'
        f'severity="{_label(a.severity)}"}} {a.count}'
        for a in m.open_alerts
    ]
    name = "homewatch_alert_deliveries"
    lines += [f"# HELP {name} Alert deliveries (e-mails, webhook calls) by channel and status.",
              f"# TYPE {name} gauge"]  # fmt: skip
    lines += [f'{name}{{channel="{d.channel}",status="{d.status}"}} {d.count}' for d in m.deliveries]
    for name, kind, help_text, value in (
        ("homewatch_alert_deliveries_failed_total", "counter",
         "Alert deliveries that failed for good (no more attempts).", m.failed),
        ("homewatch_alert_delivery_oldest_pending_seconds", "gauge",
         "Age of the oldest pending alert delivery (0: none pending).", m.oldest_pending_s),
        ("homewatch_alert_delivery_overdue_seconds", "gauge",
         "How long the most overdue pending delivery waits past its time: a stopped dispatcher grows it.",
         m.most_overdue_s),
    ):  # fmt: skip
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {_number(value)}"]
    return "\n".join(lines) + "\n"


def _authorised(request: Request, settings: GatewaySettings) -> bool:
    if settings.metrics_token is None:
        return settings.development
    token = settings.metrics_token.get_secret_value().encode()
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request, db: DbDep, settings: SettingsDep) -> PlainTextResponse:
    """Ingest counters per worker, and alerts and their deliveries, in the Prometheus text format."""
    if not _authorised(request, settings):
        return PlainTextResponse(
            "a valid bearer token is required\n", status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )
    text = render_metrics(worker_counters(db), rejection_counts(db))
    text += render_alert_metrics(alert_metrics(db, now=ui_now(request)))
    return PlainTextResponse(text, media_type=CONTENT_TYPE)
