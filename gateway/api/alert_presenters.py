"""What the alert pages say: kinds, statuses, severities, outcomes and history lines in words, and their URLs.

Pure functions over ``gateway.store.alert_inbox``'s values, called by the templates (``ALERT_GLOBALS``:
the inbox, an alert's page and the patient page's alert section). Every word goes through gettext; times
through ``presenters``. An alert's reason is the model's sentence, worded by ``model_words.model_text``
(a template global already). Nothing here reads the database or the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from gateway.api.i18n import N_, gettext, pgettext
from gateway.api.model_words import rule_title
from gateway.api.patient_vitals import BY_KEY
from gateway.api.presenters import kind as reading_kind
from gateway.api.presenters import when
from gateway.store.alert_actions import NOTE_MAX_CHARS, OUTCOMES, SNOOZE_MAX
from gateway.store.alert_inbox import TABS, AlertEvent

KIND_LABELS: Mapping[str, str] = {
    "news2": "NEWS2",
    "disease-rule": N_("Disease rule"),
    "threshold": N_("Own limits crossed"),
    "risk-rise": N_("Rising 30-day risk"),
    "missing": N_("Measurement missing"),
}
STATUS_LABELS: Mapping[str, str] = {
    "open": N_("Not acknowledged"),
    "acknowledged": N_("Acknowledged"),
    "snoozed": N_("Snoozed"),
    "resolved": N_("Resolved"),
}
SEVERITY_LABELS: Mapping[str, str] = {"medium": N_("Medium"), "high": N_("High")}
OUTCOME_LABELS: Mapping[str, str] = {
    "contacted-no-action": N_("Contacted the patient, no action needed"),
    "treatment-adjusted": N_("Treatment adjusted"),
    "home-visit": N_("Home visit"),
    "gp-contacted": N_("GP contacted"),
    "admitted": N_("Admitted to hospital"),
    "false-alarm": N_("False alarm"),
    "measurement-error": N_("Measurement error"),
    "other": N_("Other"),
    # Migration 0013: an acknowledgement before alerts had a lifecycle ended the alert.
    "acknowledged-before-lifecycle": N_("Acknowledged (before alerts had outcomes)"),
}
assert set(OUTCOMES) < set(OUTCOME_LABELS)
ACTION_LABELS: Mapping[str, str] = {
    "raised": N_("Raised"),
    "severity-raised": N_("Made more severe"),
    "acknowledged": N_("Acknowledged"),
    "snoozed": N_("Snoozed"),
    "woke": N_("Woke up after snoozing"),
    "assigned": N_("Assigned"),
    "escalated": N_("Escalated"),
    "resolved": N_("Resolved"),
    "delivered": N_("Sent"),
    "delivery-failed": N_("Sending failed, will be tried again"),
    "undeliverable": N_("Could not be sent"),
}
# How long a snooze lasts: the form's choices (``alert_pages.snooze_until`` reads them).
SNOOZE_CHOICES: tuple[tuple[str, str], ...] = (
    ("1h", N_("1 hour")),
    ("4h", N_("4 hours")),
    ("tomorrow", N_("Until tomorrow at 08:00")),
    ("until", N_("Until a time you choose")),
)
# What the page says after an action (``?done=``); anything else says nothing.
CONFIRMATIONS: Mapping[str, str] = {
    "acknowledged": N_("The alert is acknowledged."),
    "snoozed": N_("The alert is snoozed."),
    "assigned": N_("The alert is assigned."),
    "resolved": N_("The alert is resolved."),
}


def _word(table: Mapping[str, str], code: str | None) -> str:
    if code is None:
        return "—"
    return gettext(table[code]) if code in table else code


def kind_label(kind: str, key: str = "") -> str:
    """What raised the alert: "NEWS2", "Disease rule: Heart-failure weight gain", "Own limits crossed:
    SpO₂"."""
    label = _word(KIND_LABELS, kind)
    if not key:
        return label
    if kind == "disease-rule":
        subject = rule_title(key)
    elif key in BY_KEY:
        subject = gettext(BY_KEY[key].label)
    else:
        subject = reading_kind(key)
    return f"{label}: {subject}"


def status_label(status: str) -> str:
    """An alert's status in words ("Kvitteret")."""
    return _word(STATUS_LABELS, status)


def severity_label(severity: str) -> str:
    """An alert's severity in words ("Høj")."""
    return _word(SEVERITY_LABELS, severity)


def alert_outcome_label(outcome: str | None) -> str:
    """How an alert was resolved, in words."""
    return _word(OUTCOME_LABELS, outcome)


def tab_label(tab: str) -> str:
    """A tab of the inbox: the plural of the status in Danish ("Åbne"), hence a context of its own."""
    labels = {
        "open": pgettext("alert tab", "Open"),
        "acknowledged": pgettext("alert tab", "Acknowledged"),
        "mine": pgettext("alert tab", "Assigned to me"),
        "snoozed": pgettext("alert tab", "Snoozed"),
        "resolved": pgettext("alert tab", "Resolved"),
    }
    return labels.get(tab, tab)


def person(username: str | None, full_name: str | None = None) -> str:
    """Who: "Anna Holm (anna)", "anna", or homewatch itself (None)."""
    if username is None:
        return "homewatch"
    return f"{full_name} ({username})" if full_name else username


def event_action(action: str) -> str:
    """What happened to an alert, in words ("Udsat")."""
    return _word(ACTION_LABELS, action)


def event_detail(event: AlertEvent) -> str | None:
    """The particulars of a history line beyond who and the note: until when, to whom, the outcome."""
    detail: Mapping[str, Any] = event.detail if isinstance(event.detail, Mapping) else {}
    if event.action == "snoozed" and isinstance(detail.get("until"), str):
        return gettext("until %(when)s", when=_until(detail["until"]))
    if event.action == "assigned" and isinstance(detail.get("assignee"), str):
        return gettext("to %(who)s", who=detail["assignee"])
    if event.action == "resolved" and isinstance(detail.get("outcome"), str):
        return alert_outcome_label(detail["outcome"])
    if event.action in ("raised", "severity-raised") and isinstance(detail.get("severity"), str):
        return severity_label(detail["severity"])
    if event.action == "escalated" and isinstance(detail.get("level"), int):
        return gettext("level %(level)d", level=detail["level"])
    if event.action == "acknowledged" and detail.get("again"):
        return gettext("it was already acknowledged")
    return None


def _until(text: str) -> str:
    try:
        return when(datetime.fromisoformat(text))
    except ValueError:
        return text


def confirmation(done: str) -> str | None:
    """What the page says after an action named by ``?done=``; None for anything else."""
    return gettext(CONFIRMATIONS[done]) if done in CONFIRMATIONS else None


def snooze_choices() -> list[tuple[str, str]]:
    """(value, words) of each snooze length the form offers."""
    return [(value, gettext(label)) for value, label in SNOOZE_CHOICES]


def alert_page_url(alert_id: int, back: str = "") -> str:
    """The local URL of an alert's page; ``back`` says where its forms return to."""
    return f"/alerts/{alert_id}" + (f"?{urlencode({'back': back})}" if back else "")


def alert_action_url(alert_id: int, action: str) -> str:
    """The local URL a form of an alert posts to ("/alerts/12/acknowledge")."""
    return f"/alerts/{alert_id}/{action}"


def inbox_url(tab: str = "open", page: int = 1) -> str:
    """The local URL of a tab of the inbox."""
    params = {"tab": tab, **({"page": str(page)} if page > 1 else {})}
    return f"/alerts?{urlencode(params)}"


ALERT_GLOBALS: Mapping[str, Any] = {
    "kind_label": kind_label,
    "status_label": status_label,
    "severity_label": severity_label,
    "alert_outcome_label": alert_outcome_label,
    "tab_label": tab_label,
    "person": person,
    "event_action": event_action,
    "event_detail": event_detail,
    "snooze_choices": snooze_choices,
    "alert_page_url": alert_page_url,
    "alert_action_url": alert_action_url,
    "inbox_url": inbox_url,
    "ALERT_OUTCOMES": OUTCOMES,
    "ALERT_NOTE_MAX": NOTE_MAX_CHARS,
    "SNOOZE_MAX_DAYS": SNOOZE_MAX.days,
    "ALERT_TABS": TABS,
}
