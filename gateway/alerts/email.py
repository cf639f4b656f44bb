"""Alerts by e-mail: the message (pure) and handing it to the SMTP server (smtplib, blocking).

A message says as little as it can (docs/alerts.md, "E-mail"): that there is an alert, its kind and
severity, its escalation level, the patient's initials only when the municipality allows them
(``MessageFacts.initials`` is None otherwise), and the link to the alert in the web UI, where the rest
is shown to whoever logs in and may see the patient. Never the name, the CPR number, the values or the
reason in words: e-mail crosses servers nobody here controls and lands on phones' lock screens.

The text is Danish by default (``settings.default_language``; the staff's language) and English on
request. It lives in :data:`TEXTS` below, one table per language, rather than in the web UI's gettext
catalogue: a message is built outside any request, in the dispatcher's thread, and the whole text of a
language is easier to review side by side in one place (a test holds both tables to the same keys and
placeholders).

``send_email`` runs in the dispatcher's thread (never on an event loop): it connects with a timeout,
upgrades with STARTTLS and logs in when the settings say so, and raises :class:`EmailFailed`, marked
``permanent`` when trying again cannot help (no SMTP server configured, the address refused with a 5xx).
When to try again is the dispatcher's.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from gateway.errors import GatewayFailure
from gateway.settings import GatewaySettings
from gateway.store.alert_deliveries import MessageFacts

# Long enough for a loaded relay to answer each command (RFC 5321 suggests minutes per command for
# relays; a submission server on the municipality's network answers in well under a second), short
# enough that one dead server holds the dispatcher's other deliveries back for seconds, not minutes.
SMTP_TIMEOUT_S = 15.0

# The e-mail text: one table per language, the same keys and {placeholders} in each.
TEXTS: Mapping[str, Mapping[str, str]] = {
    "da": {
        "subject.raised": "[homewatch] Ny alarm ({severity}): {kind}",
        "subject.severity-raised": "[homewatch] Alarmen er blevet mere alvorlig ({severity}): {kind}",
        "subject.escalated": "[homewatch] Eskaleret alarm ({severity}): {kind}",
        "intro.raised": "Der er en ny alarm i homewatch for en borger, du har ansvar for.",
        "intro.severity-raised": (
            "En alarm i homewatch for en borger, du har ansvar for, er blevet mere alvorlig."
        ),
        "intro.escalated": "Ingen har kvitteret for denne alarm i homewatch i tide, så den er sendt videre.",
        "kind": "Type",
        "severity": "Alvorlighed",
        "patient": "Borger",
        "level": "Eskaleringsniveau",
        "open": "Se alarmen og kvittér for den her:",
        "privacy": "Beskeden indeholder med vilje ingen helbredsoplysninger. Log ind for at se dem.",
        "automatic": "Beskeden er sendt automatisk; svar på den bliver ikke læst.",
        "kind.news2": "NEWS2",
        "kind.disease-rule": "Sygdomsspecifik regel",
        "kind.threshold": "Borgerens egne grænseværdier",
        "kind.risk-rise": "Stigende risiko for indlæggelse",
        "kind.missing": "Manglende måling",
        "severity.high": "høj",
        "severity.medium": "middel",
    },
    "en": {
        "subject.raised": "[homewatch] New alert ({severity}): {kind}",
        "subject.severity-raised": "[homewatch] Alert has become more severe ({severity}): {kind}",
        "subject.escalated": "[homewatch] Escalated alert ({severity}): {kind}",
        "intro.raised": "There is a new alert in homewatch for a patient in your care.",
        "intro.severity-raised": "An alert in homewatch for a patient in your care has become more severe.",
        "intro.escalated": "Nobody acknowledged this alert in homewatch in time, so it has been passed on.",
        "kind": "Kind",
        "severity": "Severity",
        "patient": "Patient",
        "level": "Escalation level",
        "open": "See the alert and acknowledge it here:",
        "privacy": "This message deliberately holds no health information. Log in to see it.",
        "automatic": "This message was sent automatically; replies are not read.",
        "kind.news2": "NEWS2",
        "kind.disease-rule": "Disease-specific rule",
        "kind.threshold": "The patient's own limits",
        "kind.risk-rise": "Rising risk of admission",
        "kind.missing": "Missing measurement",
        "severity.high": "high",
        "severity.medium": "medium",
    },
}
DEFAULT_LANGUAGE = "da"


class EmailFailed(GatewayFailure):
    """The SMTP server did not take the message; ``permanent`` when trying again cannot help."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where e-mails are handed over (``smtp_*`` settings); ``host`` None: e-mail is not configured."""

    host: str | None
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "homewatch@localhost"
    timeout_s: float = SMTP_TIMEOUT_S

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> SmtpServer:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=None if settings.smtp_password is None else settings.smtp_password.get_secret_value(),
            sender=settings.smtp_from,
        )


def alert_link(base_url: str, alert_id: int) -> str:
    """The alert's page in the web UI (``settings.web_base_url`` + ``/alerts/<id>``)."""
    return f"{base_url.rstrip('/')}/alerts/{alert_id}"


def _text(language: str) -> Mapping[str, str]:
    return TEXTS.get(language, TEXTS[DEFAULT_LANGUAGE])


def subject(facts: MessageFacts, language: str = DEFAULT_LANGUAGE) -> str:
    """The subject line: what happened, the severity and the kind (and the initials, when allowed)."""
    t = _text(language)
    action = facts.event_action if f"subject.{facts.event_action}" in t else "raised"
    line = t[f"subject.{action}"].format(
        severity=t.get(f"severity.{facts.severity}", facts.severity),
        kind=t.get(f"kind.{facts.kind}", facts.kind),
    )
    return line if facts.initials is None else f"{line} - {facts.initials}"


def body(facts: MessageFacts, base_url: str, language: str = DEFAULT_LANGUAGE) -> str:
    """The plain-text body (module docstring: no health information, a link)."""
    t = _text(language)
    action = facts.event_action if f"intro.{facts.event_action}" in t else "raised"
    lines = [
        t[f"intro.{action}"],
        "",
        f"{t['kind']}: {t.get(f'kind.{facts.kind}', facts.kind)}",
        f"{t['severity']}: {t.get(f'severity.{facts.severity}', facts.severity)}",
    ]
    if facts.initials is not None:
        lines.append(f"{t['patient']}: {facts.initials}")
    if facts.escalation_level > 0:
        lines.append(f"{t['level']}: {facts.escalation_level}")
    lines += ["", t["open"], alert_link(base_url, facts.alert_id), "", t["privacy"], t["automatic"], ""]
    return "\n".join(lines)


def build_email(
    facts: MessageFacts,
    *,
    to: str,
    sender: str,
    base_url: str,
    at: datetime,
    language: str = DEFAULT_LANGUAGE,
) -> EmailMessage:
    """The e-mail telling ``to`` of the alert event in ``facts``, dated ``at``."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject(facts, language)
    message["Date"] = format_datetime(at)
    domain = sender.rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(idstring=f"alert-{facts.alert_id}", domain=domain)
    # RFC 3834: no out-of-office replies to a machine.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body(facts, base_url, language))
    # After set_content, which replaces every Content-* header.
    message["Content-Language"] = language if language in TEXTS else DEFAULT_LANGUAGE
    return message


def send_email(server: SmtpServer, message: EmailMessage) -> None:
    """Hand ``message`` to the SMTP server; :class:`EmailFailed` when it did not take it."""
    if server.host is None:
        raise EmailFailed("no SMTP server is configured (HOMEWATCH_SMTP_HOST)", permanent=True)
    try:
        with smtplib.SMTP(server.host, server.port, timeout=server.timeout_s) as smtp:
            if server.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if server.username is not None:
                smtp.login(server.username, server.password or "")
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(
            f"{code} {text.decode(errors='replace')}" for code, text in exc.recipients.values()
        )
        raise EmailFailed(
            f"the SMTP server refused the address: {detail}", permanent=all(c >= 500 for c in codes)
        ) from exc
    except smtplib.SMTPResponseException as exc:
        text = (
            exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        )
        # A 5xx to the message itself is final; one to the login or the sender is a setting an
        # administrator can mend while the retries last.
        final = exc.smtp_code >= 500 and isinstance(exc, smtplib.SMTPDataError)
        raise EmailFailed(f"the SMTP server answered {exc.smtp_code} {text}", permanent=final) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise EmailFailed(f"SMTP {server.host}:{server.port}: {type(exc).__name__}: {exc}") from exc
