"""The patient page's "Contact with the patient": the patient's contact requests, and the nurse's messages
to the patient shown on the hub's patient view.

- ``contact_section`` is what the patient page shows (``patient_pages``): the patient's newest "contact
  my nurse" requests with the forms to take and finish them (``contact_request_pages``), the messages sent
  to the patient, and for a nurse the form to write one.
- ``POST /patients/{id}/messages``: stores the message and sends it to the patient's hub(s)
  (``gateway.store.patient_messages.send_message``: audited, the hubs' config version counted, in one
  transaction; then each hub's retained config is published, or the config job publishes it when the
  broker is away), then back (303) to the patient page saying whether the hub has it yet; an empty or
  too long message shows the form again (400) with an error summary at the top, what was typed kept.

Only a nurse writes to a patient (home-care staff; a GP is 403 here and reads the messages on the page),
only to a patient she may see (anyone else is 404, whether they exist or not); the form carries the
session's anti-forgery token (``deps.CheckedForm``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from gateway.api.auth import User
from gateway.api.clock import ui_now
from gateway.api.contact_request_pages import confirmation, patient_requests
from gateway.api.deps import CheckedForm, ClientAddress, ClinicalUser, DbDep
from gateway.api.fhir_search import ID_PATTERN
from gateway.api.fleet_broker import fleet_broker
from gateway.api.i18n import N_
from gateway.api.i18n import gettext as _
from gateway.api.presenters import patient_url
from gateway.api.web import render_page
from gateway.hub_config import publish_hub_config
from gateway.store import access, patient_messages, patient_views
from gateway.store.audit import record_audit
from gateway.store.contact_requests import ContactRequest
from gateway.store.patient_messages import MESSAGE_MAX_CHARS, PatientMessage

router = APIRouter(tags=["web"])

# What the patient page says after a message was sent (``?message=``); anything else says nothing.
SENT: Mapping[str, str] = {
    "sent": N_("The message is saved and sent to the patient's hub."),
    "queued": N_(
        "The message is saved. The hub could not be reached now: the gateway sends it as soon as it can."
    ),
    "no-hub": N_("The message is saved. The patient has no hub: it is shown once a hub is enrolled."),
}


def get_nurse(user: ClinicalUser) -> User:
    """The current user when she is a nurse (home-care staff write to the patient); a GP is 403."""
    if user.role != access.NURSE:
        raise HTTPException(403, _("Only a nurse of the patient's care team writes to the patient."))
    return user


NurseUser = Annotated[User, Depends(get_nurse)]


@dataclass(frozen=True, slots=True)
class ContactSection:
    """The patient page's contact with the patient: requests newest first, messages newest first, whether
    the viewer may write, and what the last action did (None: nothing to say)."""

    requests: list[ContactRequest]
    messages: list[PatientMessage]
    may_write: bool
    max_chars: int
    message_sent: str | None
    request_done: str | None


def contact_section(
    conn: psycopg.Connection[Any], user: User, patient_id: str, *, message: str = "", request: str = ""
) -> ContactSection:
    """What the patient page shows of a patient ``user`` may see (nothing of anyone else)."""
    return ContactSection(
        patient_requests(conn, user, patient_id),
        patient_messages.messages_of(conn, user, patient_id),
        user.role == access.NURSE,
        MESSAGE_MAX_CHARS,
        _(SENT[message]) if message in SENT else None,
        confirmation(request),
    )


def _message_form(
    request: Request, user: User, patient: patient_views.PatientRow, text: str, error: str
) -> HTMLResponse:
    return render_page(
        request,
        user,
        "patient_message.html",
        400,
        patient=patient,
        synthetic=patient.synthetic,
        text=text,
        error=error,
        max_chars=MESSAGE_MAX_CHARS,
    )


@router.post("/patients/{patient_id}/messages", response_class=HTMLResponse, response_model=None)
def send_message(
    patient_id: str,
    request: Request,
    user: NurseUser,
    form: CheckedForm,
    conn: DbDep,
    client: ClientAddress,
) -> HTMLResponse | RedirectResponse:
    """Send a message to the patient's hub (audited); an empty or too long one shows the form again."""
    patient = patient_views.patient(conn, user, patient_id) if ID_PATTERN.fullmatch(patient_id) else None
    if patient is None:
        raise HTTPException(404, _("There is no such patient among yours."))
    # Line breaks are kept (the hub shows them); other control characters are not text.
    text = "".join(c for c in form.get("text", "") if c.isprintable() or c == "\n").strip()
    error = None
    if not text:
        error = _("Write the message before sending it.")
    elif len(text) > MESSAGE_MAX_CHARS:
        error = _("A message can have at most %(max)d characters.", max=MESSAGE_MAX_CHARS)
    if error is not None:
        # The form shows the patient's name again: a view, audited as one.
        record_audit(conn, user, "view-patient", [patient.id], "message refused", client=client)
        return _message_form(request, user, patient, text, error)
    sent = patient_messages.send_message(conn, user, patient.id, text, at=ui_now(request), client=client)
    if sent.message is None or sent.municipality_id is None:
        raise HTTPException(404, _("There is no such patient among yours."))
    publisher = fleet_broker(request).publisher
    published = [publish_hub_config(conn, publisher, sent.municipality_id, hub) for hub in sent.hubs]
    outcome = "no-hub" if not sent.hubs else "sent" if all(published) else "queued"
    return RedirectResponse(f"{patient_url(patient.id)}?message={outcome}#contact", status_code=303)
