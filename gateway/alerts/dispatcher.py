"""The alert dispatcher: a thread that, every ``settings.alert_jobs_interval_s``, wakes ended snoozes,
escalates what nobody acknowledged in time, and sends the due deliveries of the outbox.

A round (``run_once``) does, each change in its own short transaction:

1. **wake**: a snoozed alert whose ``snoozed_until`` has passed is open again ('woke'), and its
   escalation clock starts again (``escalate_at`` = now + the municipality's delay for its severity);
2. **escalate**: an open alert whose ``escalate_at`` has passed goes up a level ('escalated') and its
   wider audience is queued (``gateway.alerts.routing.escalate``), before the deliveries are sent so
   they go out in the same round;
3. **deliver**: due deliveries are claimed in batches (``alert_deliveries.claim_due``: a lease, so no
   transaction is open while a message travels and other gateway processes skip them), sent (e-mail by
   SMTP, webhook by HTTP; blocking, in this thread) and marked: sent ('delivered' event), to be tried
   again after the back-off of :class:`DeliveryPolicy`, or failed after its last attempt
   ('delivery-failed' event). When every delivery of an event has failed, nobody was reached: the alert
   gets an 'undeliverable' event and escalates at once.

All state is in the database (the outbox and the alerts' columns): a round after a restart finds what
fell due meanwhile, and a database error is logged and the work retried the next round. Deliveries are
at least once: a process that dies between sending and marking leaves its claim to expire and the
message is sent again; a graceful ``stop`` hands back what it claimed but did not send.

``clock`` is the gateway's "now" (the demo's simulated time); None: the wall clock. Who is told is
``routing``'s; what messages say is ``email``'s and ``webhook``'s; the SQL is the store's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from gateway.alerts import routing
from gateway.alerts.email import EmailFailed, SmtpServer, build_email, send_email
from gateway.alerts.webhook import WebhookFailed, post_webhook, signed_headers, webhook_body, webhook_id
from gateway.settings import GatewaySettings
from gateway.store import alert_deliveries as outbox
from gateway.store import alert_jobs
from gateway.store import alerts as alert_rows
from gateway.store.errors import describe

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """When deliveries are tried again and how much one round takes on; tests may change them."""

    # First retry: a relay or receiver that refused once is often restarting or shedding load; half a
    # minute lets it come back without leaving a nurse uninformed for long.
    first_retry: timedelta = timedelta(seconds=30)
    # Each retry waits twice as long as the last (30 s, 1, 2, 4, 8 min), never longer than this.
    backoff_cap: timedelta = timedelta(minutes=10)
    # Six attempts span 15.5 minutes: the delay after which an unacknowledged high alert escalates, so
    # by then a delivery that cannot get through is failed, on the admin page, and counted by
    # "nobody reached". No jitter: each delivery is retried by one dispatcher on its own schedule, and
    # deliveries of different events are already spread by when they were raised.
    max_attempts: int = 6
    # Deliveries claimed at a time: small, so a stopping dispatcher hands little back and other
    # gateway processes find work.
    claim_batch: int = 10
    # How long a claim keeps others off: a whole batch at the slowest (10 x the 15 s SMTP timeout) with
    # room to spare. After a crash, what the dead process claimed is due again after this.
    claim_lease: timedelta = timedelta(minutes=5)
    # Wakes and escalations per round, each: a backlog (after a long outage) is worked off over a few
    # rounds instead of holding up the deliveries of this one.
    jobs_per_round: int = 100

    def retry_after(self, attempt: int) -> timedelta:
        """The wait after failed ``attempt`` (1-based): doubling from ``first_retry``, capped."""
        wait: timedelta = self.first_retry * 2 ** (attempt - 1)
        return min(self.backoff_cap, wait)


@dataclass(frozen=True, slots=True)
class Round:
    """What one round did."""

    woke: int = 0
    escalated: int = 0
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0


class Dispatcher:
    """The thread of the module docstring: ``start``, ``stop``; ``run_once`` runs a round in the caller's
    thread (tests on a clock of their own), ``run_now`` / ``wait_delivered`` wake the thread and wait."""

    def __init__(
        self,
        database_url: str,
        settings: GatewaySettings,
        *,
        clock: Callable[[], datetime] | None = None,
        policy: DeliveryPolicy | None = None,
    ) -> None:
        self._database_url = database_url
        self._interval = settings.alert_jobs_interval_s
        self._smtp = SmtpServer.from_settings(settings)
        self._base_url = settings.web_base_url
        self._language = settings.default_language
        self._clock = clock
        self.policy = policy or DeliveryPolicy()
        self._http = httpx.Client()
        self._conn: psycopg.Connection[Any] | None = None
        self._round_lock = threading.Lock()  # one round at a time on the one connection
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._started = 0
        self._finished = 0
        self._succeeded = 0
        self._last = Round()
        self._thread = threading.Thread(target=self._run, name="alert-dispatcher", daemon=True)
        self.sent = 0
        self.failed = 0
        self.escalated = 0

    # -- the thread ---------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the message on its way, hand back the rest of the batch, close; safe without start."""
        self._stopping.set()
        self._wake.set()
        with self._done:
            self._done.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
        with self._round_lock:
            self._close()
            self._http.close()

    def run_now(self, timeout: float) -> bool:
        """Run a round in the thread now and wait for it: True when it ended without a database error,
        False when it failed, the dispatcher stopped or ``timeout`` passed."""
        with self._done:
            wanted = self._started + 1
            self._wake.set()
            self._done.wait_for(lambda: self._finished >= wanted or self._stopping.is_set(), timeout=timeout)
            return self._succeeded >= wanted

    def wait_delivered(self, timeout: float) -> bool:
        """True once a round found no delivery due (everything due was sent, failed or put off to its
        retry); False after ``timeout``. For the demo and tests."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if self.run_now(left):
                with self._done:
                    if self._last.claimed == 0:
                        return True
        return False

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._done:
                self._started += 1
                number = self._started
            result: Round | None = None
            try:
                result = self.run_once()
            except psycopg.Error as exc:
                # Nothing is lost: the outbox and the alerts' columns hold the work for the next round.
                log.warning("alert dispatcher: database error, retrying next round: %s", exc)
                with self._round_lock:
                    self._close()
            with self._done:
                self._finished = number
                if result is not None:
                    self._succeeded = number
                    self._last = result
                self._done.notify_all()
            self._wake.wait(self._interval)
            self._wake.clear()

    # -- one round ------------------------------------------------------------------------------------

    def run_once(self) -> Round:
        """Wake, escalate, deliver (module docstring); a database error is raised to the caller."""
        with self._round_lock:
            conn = self._connection()
            woke = self._wake_snoozed(conn)
            escalated = self._escalate_due(conn)
            claimed = sent = retried = failed = released = 0
            while not self._stopping.is_set():
                with conn.transaction():
                    batch = outbox.claim_due(
                        conn, self._now(), self.policy.claim_batch, lease=self.policy.claim_lease
                    )
                if not batch:
                    break
                claimed += len(batch)
                for i, delivery in enumerate(batch):
                    if self._stopping.is_set():
                        released += self._release(conn, batch[i:])
                        break
                    outcome = self._deliver(conn, delivery)
                    sent += outcome == "sent"
                    retried += outcome == "retry"
                    failed += outcome == "failed"
            self.sent += sent
            self.failed += failed
            self.escalated += escalated
            return Round(woke, escalated, claimed, sent, retried, failed, released)

    def _now(self) -> datetime:
        return datetime.now(UTC) if self._clock is None else self._clock()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._database_url, autocommit=True)
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _wake_snoozed(self, conn: psycopg.Connection[Any]) -> int:
        woke = 0
        for _ in range(self.policy.jobs_per_round):
            with conn.transaction():
                now = self._now()
                alert = alert_jobs.claim_due_wake(conn, now)
                if alert is None:
                    break
                after = alert_rows.escalate_after(conn, alert.municipality_id, alert.severity)
                escalate_at = now + after if alert.escalation_level < routing.MAX_ESCALATION_LEVEL else None
                alert_jobs.wake(conn, alert.id, at=now, escalate_at=escalate_at)
                alert_rows.add_event(conn, alert.id, "woke", at=now)
            woke += 1
        return woke

    def _escalate_due(self, conn: psycopg.Connection[Any]) -> int:
        escalated = 0
        for _ in range(self.policy.jobs_per_round):
            with conn.transaction():
                now = self._now()
                alert = alert_jobs.claim_due_escalation(conn, now)
                if alert is None:
                    break
                escalated += routing.escalate(conn, alert.id, now=now, reason="not-acknowledged")
        return escalated

    def _release(self, conn: psycopg.Connection[Any], deliveries: list[outbox.Delivery]) -> int:
        with conn.transaction():
            now = self._now()
            return sum(outbox.release(conn, d, now=now) for d in deliveries)

    # -- one delivery -----------------------------------------------------------------------------------

    def _deliver(self, conn: psycopg.Connection[Any], delivery: outbox.Delivery) -> str:
        """Send one claimed delivery and record the outcome: 'sent', 'retry', 'failed' or 'lost' (its
        claim ran out and another process has it now)."""
        error: str | None = None
        permanent = False
        try:
            self._send(conn, delivery)
        except (EmailFailed, WebhookFailed) as exc:
            error, permanent = exc.reason, exc.permanent
        except Exception as exc:
            # A bug in building one message must not stop every other delivery: it is this delivery's
            # failure, retried and in the end failed for the administrator to see.
            log.exception("alert dispatcher: delivery %d could not be sent", delivery.id)
            error = describe(exc)
        with conn.transaction():
            now = self._now()
            if error is None:
                return self._record_sent(conn, delivery, now)
            if permanent or delivery.attempts >= self.policy.max_attempts:
                return self._record_failed(conn, delivery, now, error)
            retry_at = now + self.policy.retry_after(delivery.attempts)
            log.info(
                "alert delivery %d (%s, attempt %d) failed, again at %s: %s",
                delivery.id,
                delivery.channel,
                delivery.attempts,
                retry_at.isoformat(),
                error,
            )
            return (
                "retry"
                if outbox.mark_retry(conn, delivery, next_attempt_at=retry_at, error=error)
                else "lost"
            )

    def _send(self, conn: psycopg.Connection[Any], delivery: outbox.Delivery) -> None:
        facts = outbox.message_facts(conn, delivery.alert_id, delivery.event_id)
        if facts is None:
            raise EmailFailed("the alert or its event is gone", permanent=True)
        if delivery.channel == "email":
            message = build_email(
                facts,
                to=delivery.recipient,
                sender=self._smtp.sender,
                base_url=self._base_url,
                at=self._now(),
                language=self._language,
            )
            send_email(self._smtp, message)
            return
        secret = outbox.webhook_secret(conn, delivery.municipality_id)
        if secret is None:
            raise WebhookFailed("the municipality has no webhook any more", permanent=True)
        body = webhook_body(facts, delivery.event_id, self._base_url)
        # The signature's time is the wall clock's: receivers check it against theirs (replay).
        headers = signed_headers(secret, webhook_id(facts, delivery.event_id), int(time.time()), body)
        post_webhook(self._http, delivery.recipient, body, headers)

    def _record_sent(self, conn: psycopg.Connection[Any], delivery: outbox.Delivery, now: datetime) -> str:
        if not outbox.mark_sent(conn, delivery, at=now):
            return "lost"
        alert_rows.add_event(conn, delivery.alert_id, "delivered", at=now, detail=_detail(delivery))
        return "sent"

    def _record_failed(
        self, conn: psycopg.Connection[Any], delivery: outbox.Delivery, now: datetime, error: str
    ) -> str:
        # The alert's lock orders concurrent failures of one event: only the last sees nobody reached.
        alert = alert_jobs.lock_alert(conn, delivery.alert_id)
        if not outbox.mark_failed(conn, delivery, at=now, error=error):
            return "lost"
        log.warning(
            "alert delivery %d (%s to %s) failed after %d attempt(s): %s",
            delivery.id,
            delivery.channel,
            delivery.audience,
            delivery.attempts,
            error,
        )
        alert_rows.add_event(conn, delivery.alert_id, "delivery-failed", at=now, detail=_detail(delivery))
        if outbox.event_outcome(conn, delivery.event_id).nobody_reached:
            level = 0 if alert is None else alert.escalation_level
            routing.record_undeliverable(
                conn,
                delivery.alert_id,
                delivery.event_id,
                level=level,
                reason="all-deliveries-failed",
                now=now,
            )
        return "failed"


def _detail(delivery: outbox.Delivery) -> dict[str, object]:
    """An event's detail on a delivery: who by which channel, the username, never the address (the
    history is shown to the care team; addresses are the administrator's business)."""
    detail: dict[str, object] = {
        "delivery": delivery.id,
        "event": delivery.event_id,
        "channel": delivery.channel,
        "audience": delivery.audience,
        "attempts": delivery.attempts,
    }
    if delivery.username is not None:
        detail["username"] = delivery.username
    return detail
