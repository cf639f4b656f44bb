"""An alert as three FHIR R4 resources: a Flag on the patient, a Task for the care team, and a
Communication to the GP. Pure: an ``AlertRecord`` in, validated resources (JSON-ready dicts) out.

- **Flag**: "this patient has an alert": ``status`` active until the alert is resolved, then inactive;
  category ``clinical``; ``code`` the alert's kind (``urn:homewatch:alert-kind``) with the kind, key and
  severity in words; ``period`` from raised to resolved; ``author`` homewatch.
- **Task**: the care team's triage and follow-up of the alert, as the Danish eHealth infrastructure (FUT)
  gives a triage Task to the team that must act on a measurement. ``status`` follows the lifecycle
  (``gateway.store.alert_fhir_reads.TASK_STATUS``), ``businessStatus`` says homewatch's own state;
  ``priority`` asap (high) or urgent (medium); ``focus`` the Flag; ``owner`` the patient's care team;
  ``note`` the acknowledgement and the resolution with who wrote them; ``output`` the outcome;
  ``statusReason`` why it is on hold (snoozed). FUT names the responsible team in an extension
  (``ehealth-task-responsible``) and the assigned person in ``owner``; this Task stays plain R4, so the
  team is the owner and the assignee is said in ``businessStatus``.
- **Communication**: the e-mail that told the patient's GP (``alert_deliveries``, audience ``gp``):
  completed when one was sent, in-progress while one is queued, not-done otherwise; ``topic`` and
  ``payload`` the last e-mail's subject and text, as ``gateway.alerts.email`` writes them (the kind,
  the severity and a link; never a name, a value or the reason), and none when no e-mail was queued.

homewatch serves no CareTeam, Practitioner or Device of its own: those are logical references
(``type``, ``identifier``, ``display``), so every literal reference (Patient, Flag, RiskAssessment) can be
read at this server. Words are in the source language (a resource is not shown in one reader's language),
except the Task's ``code.text``, which names the task as Danish municipalities do, and the e-mail, which is
quoted as it was sent (in the staff's language). A synthetic patient's resources carry the test-data
label.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.task import Task

from gateway.alerts import email
from gateway.api.clinical_impression import USER_SYSTEM
from gateway.api.fhir_model import label_test_data
from gateway.store.alert_deliveries import MessageFacts
from gateway.store.alert_fhir_reads import AlertRecord, Person

KIND_SYSTEM = "urn:homewatch:alert-kind"
ALERT_STATUS_SYSTEM = "urn:homewatch:alert-status"
OUTCOME_SYSTEM = "urn:homewatch:alert-outcome"
TASK_CODE_SYSTEM = "urn:homewatch:task"
CARE_TEAM_SYSTEM = "urn:homewatch:care-team"
FLAG_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/flag-category"
COMMUNICATION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/communication-category"
PARTICIPATION_MODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"

KIND_TEXT: Mapping[str, str] = {
    "news2": "NEWS2",
    "disease-rule": "Disease rule",
    "threshold": "Own limit crossed",
    "risk-rise": "30-day admission risk rising",
    "missing": "Measurement missing",
}
STATUS_TEXT: Mapping[str, str] = {
    "open": "Open",
    "acknowledged": "Acknowledged",
    "snoozed": "Snoozed",
    "resolved": "Resolved",
}
# gateway.store.alert_actions.OUTCOMES, and the outcome migration 0013 gave alerts acknowledged before it.
OUTCOME_TEXT: Mapping[str, str] = {
    "contacted-no-action": "Patient contacted, no action needed",
    "treatment-adjusted": "Treatment adjusted",
    "home-visit": "Home visit",
    "gp-contacted": "GP contacted",
    "admitted": "Admitted to hospital",
    "false-alarm": "False alarm",
    "measurement-error": "Measurement error",
    "other": "Other",
    "acknowledged-before-lifecycle": "Acknowledged (before alerts had a lifecycle)",
}
# FHIR request-priority by alert severity.
PRIORITY: Mapping[str, str] = {"high": "asap", "medium": "urgent"}
TASK_CODE = {
    "system": TASK_CODE_SYSTEM,
    "code": "alert-triage",
    "display": "Triage and follow-up of an alert",
}
TASK_TEXT = "triage/opfølgning af alarm"
# homewatch itself: who raised the alert (Flag.author, Task.requester) and sent the e-mail.
HOMEWATCH = {"type": "Device", "display": "homewatch"}
# Why a Communication was not done, in words (the delivery's error text may hold addresses: never shown).
NOT_SENT = "No e-mail to the GP was queued (no address, or the GP was not among those told)"
FAILED = "The e-mail to the GP could not be delivered"


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def kind_text(record: AlertRecord) -> str:
    """The alert's kind in words, with its key (the rule, vital sign or measurement) when it has one."""
    words = KIND_TEXT.get(record.kind, record.kind)
    return f"{words} ({record.key})" if record.key else words


def _person(person: Person) -> dict[str, Any]:
    return {
        "type": "Practitioner",
        "identifier": {"system": USER_SYSTEM, "value": person.username},
        "display": person.name or person.username,
    }


def _labelled(resource: dict[str, Any], record: AlertRecord) -> dict[str, Any]:
    return label_test_data(resource) if record.synthetic else resource


def flag(record: AlertRecord) -> dict[str, Any]:
    """The Flag of the alert, validated by ``fhir.resources`` (R4B)."""
    period = {"start": _instant(record.raised_at)}
    if record.resolved_at is not None:
        period["end"] = _instant(record.resolved_at)
    resource: dict[str, Any] = {
        "resourceType": "Flag",
        "id": record.public_id,
        "meta": {"lastUpdated": _instant(record.updated_at)},
        "status": record.flag_status,
        "category": [
            {"coding": [{"system": FLAG_CATEGORY_SYSTEM, "code": "clinical", "display": "Clinical"}]}
        ],
        "code": {
            "coding": [{"system": KIND_SYSTEM, "code": record.kind, "display": KIND_TEXT.get(record.kind)}],
            "text": f"{kind_text(record)} alert, {record.severity} severity",
        },
        "subject": {"reference": f"Patient/{record.patient_id}"},
        "period": period,
        "author": HOMEWATCH,
    }
    built: dict[str, Any] = Flag.model_validate(resource).model_dump(mode="json", exclude_none=True)
    return _labelled(built, record)


def _business_status(record: AlertRecord) -> dict[str, Any]:
    words = STATUS_TEXT.get(record.status, record.status)
    if record.assigned_to is not None and record.status != "resolved":
        words = f"{words}, assigned to {record.assigned_to.name or record.assigned_to.username}"
    coding = {"system": ALERT_STATUS_SYSTEM, "code": record.status, "display": STATUS_TEXT.get(record.status)}
    return {"coding": [coding], "text": words}


def _notes(record: AlertRecord) -> list[dict[str, Any]]:
    """The acknowledgement's and the resolution's notes, each with who wrote it and when."""
    notes = []
    written = (
        (record.acknowledgement_note, record.acknowledged_by, record.acknowledged_at),
        (record.resolution_note, record.resolved_by, record.resolved_at),
    )
    for text, author, at in written:
        if not text:
            continue
        note: dict[str, Any] = {"text": text}
        if author is not None:
            note["authorReference"] = _person(author)
        if at is not None:
            note["time"] = _instant(at)
        notes.append(note)
    return notes


def _outcome(record: AlertRecord) -> list[dict[str, Any]]:
    if record.outcome is None:
        return []
    words = OUTCOME_TEXT.get(record.outcome, record.outcome)
    coding = {"system": OUTCOME_SYSTEM, "code": record.outcome, "display": words}
    return [{"type": {"text": "Outcome"}, "valueCodeableConcept": {"coding": [coding], "text": words}}]


def task(record: AlertRecord) -> dict[str, Any]:
    """The care team's Task of the alert, validated by ``fhir.resources`` (R4B)."""
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": record.public_id,
        "meta": {"lastUpdated": _instant(record.updated_at)},
        "status": record.task_status,
        "businessStatus": _business_status(record),
        "intent": "order",
        "priority": PRIORITY.get(record.severity, "routine"),
        "code": {"coding": [TASK_CODE], "text": TASK_TEXT},
        "description": record.reason,
        "focus": {"reference": f"Flag/{record.public_id}"},
        "for": {"reference": f"Patient/{record.patient_id}"},
        "authoredOn": _instant(record.raised_at),
        "lastModified": _instant(record.updated_at),
        "requester": HOMEWATCH,
        "owner": {
            "type": "CareTeam",
            "identifier": {"system": CARE_TEAM_SYSTEM, "value": record.care_team_id},
            "display": record.care_team_name,
        },
    }
    if record.status == "snoozed" and record.snoozed_until is not None:
        until = f"Snoozed until {_instant(record.snoozed_until)}"
        resource["statusReason"] = {
            "text": f"{until}: {record.snooze_reason}" if record.snooze_reason else until
        }
    if record.risk_assessment_id is not None:
        resource["reasonReference"] = {"reference": f"RiskAssessment/{record.risk_assessment_id}"}
    # FHIR JSON has no empty arrays.
    if notes := _notes(record):
        resource["note"] = notes
    if output := _outcome(record):
        resource["output"] = output
    built: dict[str, Any] = Task.model_validate(resource).model_dump(mode="json", exclude_none=True)
    return _labelled(built, record)


def communication(
    record: AlertRecord, message: MessageFacts | None, *, web_base_url: str, language: str
) -> dict[str, Any]:
    """The Communication that told the patient's GP of the alert (``record.gp`` must be set), validated by
    ``fhir.resources`` (R4B). ``message`` is what the last e-mail to the GP may say (None: none was
    queued); its subject and text are the e-mail's (``gateway.alerts.email``), in ``language`` and with
    links to ``web_base_url``, as the dispatcher writes them."""
    if record.gp is None:
        raise ValueError(f"alert {record.public_id}: its patient has no GP to tell")
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "id": record.communication_id,
        "status": record.communication_status,
        "category": [
            {"coding": [{"system": COMMUNICATION_CATEGORY_SYSTEM, "code": "alert", "display": "Alert"}]}
        ],
        "priority": PRIORITY.get(record.severity, "routine"),
        "medium": [
            {"coding": [{"system": PARTICIPATION_MODE_SYSTEM, "code": "EMAILWRIT", "display": "email"}]}
        ],
        "subject": {"reference": f"Patient/{record.patient_id}"},
        "about": [{"reference": f"Flag/{record.public_id}"}],
        "recipient": [_person(record.gp)],
        "sender": HOMEWATCH,
    }
    if message is not None:
        resource["topic"] = {"text": email.subject(message, language)}
        resource["payload"] = [{"contentString": email.body(message, web_base_url, language)}]
    if record.gp_emails.last_sent_at is not None:
        resource["sent"] = _instant(record.gp_emails.last_sent_at)
    if record.communication_status == "not-done":
        resource["statusReason"] = {"text": FAILED if record.gp_emails.failed else NOT_SENT}
    built: dict[str, Any] = Communication.model_validate(resource).model_dump(mode="json", exclude_none=True)
    return _labelled(built, record)
