"""What patients sent from home over FHIR: ``GET /fhir/QuestionnaireResponse`` (search) and
``/fhir/QuestionnaireResponse/{id}``, and the contact requests among ``/fhir/Task`` (``alert_fhir``
merges them with the alerts' Tasks: ``contact_request_tasks``, ``contact_request_task``).

A served resource is what the hub sent (``fhir_contract.questionnaire``, ``fhir_contract.contact``) with
the server's id, and for a Task what the care team did since: ``status`` (``requested``, then
``in-progress`` when a nurse took it, ``completed`` when done), ``owner`` (the nurse, by name) and
``lastModified``. Reads follow the API's rules (``fhir_api``): a token with the SMART scope, only the
patients of the user's assignment (anyone else's is 404), a ``fhir-read`` audit row per patient seen,
and the test-data label on what a synthetic patient sent. Rows are ``gateway.store.request_fhir_reads``'.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Security

from gateway.api import fhir_openapi
from gateway.api.auth import User
from gateway.api.deps import ClientAddress, DbDep, fhir_access
from gateway.api.errors import FhirError
from gateway.api.fhir_api import FhirResponse, fhir_base
from gateway.api.fhir_model import Entry, label_test_data, searchset, with_id
from gateway.api.fhir_search import handling_is_strict, parse_id, parse_search
from gateway.store import request_fhir_reads
from gateway.store.audit import record_audit
from gateway.store.fhir_query import Cursor, Search
from gateway.store.fhir_reads import Page
from gateway.store.request_fhir_reads import QUESTIONNAIRE_RESPONSE, RequestRecord, ResponseRecord

router = APIRouter(prefix="/fhir", tags=["fhir"])
_BEARER = [Security(fhir_openapi.BEARER)]
_AUDIT_DETAIL_CHARS = 500

ResponseSearcher = Annotated[User, Depends(fhir_access(QUESTIONNAIRE_RESPONSE, "search"))]
ResponseReader = Annotated[User, Depends(fhir_access(QUESTIONNAIRE_RESPONSE, "read"))]


def _audit(conn: DbDep, user: User, request: Request, client: str, patient_ids: list[str]) -> None:
    detail = f"{request.method} {request.url.path}?{request.url.query}".rstrip("?")[:_AUDIT_DETAIL_CHARS]
    record_audit(conn, user, "fhir-read", list(dict.fromkeys(patient_ids)), detail, client=client)


def task(record: RequestRecord) -> dict[str, Any]:
    """The contact request's Task as served."""
    resource = with_id(record.resource, record.public_id)
    resource["status"] = record.task_status
    resource["lastModified"] = record.updated_at.isoformat()
    resource["meta"] = {**(resource.get("meta") or {}), "lastUpdated": record.updated_at.isoformat()}
    if record.owner is not None:
        resource["owner"] = {"display": record.owner_name or record.owner}
    return label_test_data(resource) if record.synthetic else resource


def questionnaire_response(record: ResponseRecord) -> dict[str, Any]:
    """The stored QuestionnaireResponse as served."""
    resource = with_id(record.resource, record.public_id)
    resource["meta"] = {**(resource.get("meta") or {}), "lastUpdated": record.received_at.isoformat()}
    return label_test_data(resource) if record.synthetic else resource


def contact_request_tasks(conn: DbDep, user: User, search: Search) -> Page[Entry]:
    """A page of contact-request Tasks matching a Task search, as searchset entries (unaudited)."""
    page = request_fhir_reads.search_contact_requests(conn, user, search)
    entries = tuple(Entry(task(r), Cursor(r.authored, r.public_id)) for r in page.rows)
    return Page(entries, page.has_more, page.total)


def contact_request_task(conn: DbDep, user: User, task_id: str) -> tuple[dict[str, Any], str] | None:
    """The contact-request Task with this id and its patient, or None (unaudited)."""
    record = request_fhir_reads.contact_request_by_id(conn, user, task_id)
    return None if record is None else (task(record), record.patient_id)


@router.get(
    f"/{QUESTIONNAIRE_RESPONSE}",
    response_class=FhirResponse,
    dependencies=_BEARER,
    responses=fhir_openapi.responses(fhir_openapi.SEARCHSET, "A page of matches.", 400, 401, 403),
    openapi_extra=fhir_openapi.search(QUESTIONNAIRE_RESPONSE),
)
def search_questionnaire_responses(
    request: Request, user: ResponseSearcher, conn: DbDep, client: ClientAddress
) -> FhirResponse:
    """Search the answers of the user's patients to the daily symptom checks (patient, subject, _id,
    authored, _count, _sort); newest first.

    Unknown parameters are ignored unless the request sends ``Prefer: handling=strict`` (then a 400).
    """
    strict = handling_is_strict(request.headers.get("prefer"))
    search = parse_search(QUESTIONNAIRE_RESPONSE, request.query_params.multi_items(), strict=strict)
    page = request_fhir_reads.search_responses(conn, user, search)
    entries = [Entry(questionnaire_response(r), Cursor(r.authored, r.public_id)) for r in page.rows]
    _audit(conn, user, request, client, [r.patient_id for r in page.rows])
    return FhirResponse(searchset(fhir_base(request), search, entries, page.has_more, page.total))


@router.get(
    f"/{QUESTIONNAIRE_RESPONSE}/{{response_id}}",
    response_class=FhirResponse,
    dependencies=_BEARER,
    responses=fhir_openapi.responses(
        fhir_openapi.resource(QUESTIONNAIRE_RESPONSE), "The QuestionnaireResponse.", 400, 401, 403, 404
    ),
)
def read_questionnaire_response(
    response_id: Annotated[str, fhir_openapi.fhir_id("The id a search entry carries (a uuid).")],
    request: Request,
    user: ResponseReader,
    conn: DbDep,
    client: ClientAddress,
) -> FhirResponse:
    """Read one answered daily symptom check of one of the user's patients."""
    record = request_fhir_reads.response_by_id(conn, user, parse_id(QUESTIONNAIRE_RESPONSE, response_id))
    if record is None:
        raise FhirError(404, "not-found", f"{QUESTIONNAIRE_RESPONSE}/{response_id} is not known")
    _audit(conn, user, request, client, [record.patient_id])
    return FhirResponse(questionnaire_response(record))
