"""The patients' "contact my nurse" on the care team's pages: the worklist's top, the patient page, and
the two actions on a request.

- The worklist (``review_pages.worklist_page``) shows the open requests above the ranked patients
  (``worklist_requests``: urgent first, then the one waiting longest), each with the patient, why they
  asked and when, and who took it.
- The patient page (``patient_pages``) shows the patient's requests, newest first (``patient_requests``).
- ``POST /patients/{id}/contact-requests/{request}/take``: the nurse takes an open request (in progress,
  hers); ``POST .../done``: marks it done (taken first or not). Each is audited in its transaction
  (``gateway.store.contact_requests``), then back (303) to where the form was (``back``: the worklist
  or the patient page) with what was done in ``?request=`` (a request taken or done already by someone
  else says so instead: nothing is overwritten).

Only people of a clinical role (``deps.ClinicalUser``), only for a patient they may see (anyone else's
request is 404, whether it exists or not); every form carries the session's anti-forgery token
(``deps.CheckedForm``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse

from gateway.api.clock import ui_now
from gateway.api.deps import CheckedForm, ClientAddress, ClinicalUser, DbDep
from gateway.api.fhir_search import ID_PATTERN
from gateway.api.i18n import N_
from gateway.api.i18n import gettext as _
from gateway.api.presenters import patient_url
from gateway.store import contact_requests
from gateway.store.access import Viewer
from gateway.store.audit import record_audit
from gateway.store.contact_requests import ContactRequest, Worked

router = APIRouter(tags=["web"])

AUDIT_VIEW = "view-contact-requests"
WORKLIST_ANCHOR = "/#contact-requests"

# Why the patient asked (fhir_contract.contact.REASONS), as the care team reads it.
_REASONS: Mapping[str | None, str] = {
    "feeling-worse": N_("Feels worse"),
    "question": N_("Has a question"),
    "equipment": N_("The equipment does not work"),
    None: N_("No reason given"),
}
# What the page says after an action (``?request=``); anything else says nothing.
DONE: Mapping[str, str] = {
    "taken": N_("You took the request. Mark it done when the patient has been contacted."),
    "done": N_("The request is marked done."),
    "already": N_("Someone else took or finished this request first; it is shown as it is now."),
}


def request_reason(code: str | None) -> str:
    """Why the patient asked, in words (an unknown stored code is shown as stored)."""
    label = _REASONS.get(code)
    return _(label) if label else str(code)


def request_status(request: ContactRequest) -> str:
    """Where the request stands, in words: open, taken by whom, or done by whom."""
    if request.status == contact_requests.DONE:
        return _("Done by %(who)s", who=request.done_by_name or request.done_by or "")
    if request.status == contact_requests.IN_PROGRESS:
        return _("Taken by %(who)s", who=request.taken_by_name or request.taken_by or "")
    return _("Open")


def confirmation(done: str) -> str | None:
    """What the page says after an action (``?request=``), or None."""
    return _(DONE[done]) if done in DONE else None


# What the templates call (template globals of the pages that show requests).
REQUEST_GLOBALS: Mapping[str, Any] = {
    "request_reason": request_reason,
    "request_status": request_status,
}


def worklist_requests(conn: psycopg.Connection[Any], user: Viewer, client: str) -> list[ContactRequest]:
    """The open requests of the user's patients for the worklist's top; showing them is audited (one
    row per patient listed)."""
    found = contact_requests.open_requests(conn, user)
    if found:
        detail = f"open contact requests: {len(found)}"
        record_audit(conn, user, AUDIT_VIEW, [r.patient_id for r in found], detail, client=client)
    return found


def patient_requests(conn: psycopg.Connection[Any], user: Viewer, patient_id: str) -> list[ContactRequest]:
    """The patient's newest requests, for the patient page (whose view is audited by the page)."""
    return contact_requests.patient_requests(conn, user, patient_id)


def _back(form: Mapping[str, str], patient_id: str, outcome: str) -> str:
    if form.get("back") == "patient":
        return f"{patient_url(patient_id)}?request={outcome}#contact-requests"
    return f"/?request={outcome}#contact-requests"


def _worked(worked: Worked, form: Mapping[str, str], patient_id: str, outcome: str) -> RedirectResponse:
    if worked.request is None:
        raise HTTPException(404, _("There is no such request among your patients'."))
    return RedirectResponse(
        _back(form, patient_id, outcome if worked.changed else "already"), status_code=303
    )


def _checked_ids(patient_id: str, request_id: int) -> None:
    # A patient id is a FHIR id; anything else names no patient and is not sent to the database.
    if not ID_PATTERN.fullmatch(patient_id) or not 0 < request_id < 2**63:
        raise HTTPException(404, _("There is no such request among your patients'."))


@router.post("/patients/{patient_id}/contact-requests/{request_id:int}/take", response_model=None)
def take_request(
    patient_id: str,
    request_id: int,
    request: Request,
    user: ClinicalUser,
    form: CheckedForm,
    conn: DbDep,
    client: ClientAddress,
) -> RedirectResponse:
    """Take an open contact request (audited): it is in progress, yours."""
    _checked_ids(patient_id, request_id)
    worked = contact_requests.take_request(
        conn, user, patient_id, request_id, at=ui_now(request), client=client
    )
    return _worked(worked, form, patient_id, "taken")


@router.post("/patients/{patient_id}/contact-requests/{request_id:int}/done", response_model=None)
def complete_request(
    patient_id: str,
    request_id: int,
    request: Request,
    user: ClinicalUser,
    form: CheckedForm,
    conn: DbDep,
    client: ClientAddress,
) -> RedirectResponse:
    """Mark a contact request done (audited)."""
    _checked_ids(patient_id, request_id)
    worked = contact_requests.complete_request(
        conn, user, patient_id, request_id, at=ui_now(request), client=client
    )
    return _worked(worked, form, patient_id, "done")
