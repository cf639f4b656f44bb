"""The alerts over FHIR: ``GET /fhir/Flag``, ``/fhir/Task`` and ``/fhir/Communication`` (searchsets)
and each ``.../{id}``. ``/fhir/Task`` serves the patients' "contact my nurse" requests beside the alerts'
Tasks (``request_fhir``), merged into one newest-first page under one cursor.

Every alert is a Flag on its patient, a Task of the patient's care team and, when the patient has a GP, a
Communication to the GP (``alert_resources`` builds them; docs/fhir.md "Alerts as FHIR"). A person's bearer
token whose SMART scopes grant ``user/Flag.read`` (``Task``, ``Communication``) reads the alerts of the
patients she may see (``gateway.store.access``: a nurse's care teams, a GP's own patients); anyone
else's is "not found" (404), never "forbidden"; an administrator's or a hub's token is 403
(``deps.fhir_access``). Search parameters are declared in ``fhir_search.SEARCH_PARAMS`` and listed in
the CapabilityStatement; unknown ones are ignored unless ``Prefer: handling=strict``, malformed ones are a
400 OperationOutcome. Pages are newest raised first (``_sort`` oldest first for Flag and Task), keyset
paged by ``next`` links. Every answer with patient data writes a ``fhir-read`` audit row per patient.
Reading the rows is ``gateway.store.alert_fhir_reads``'.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Security

from gateway.api import alert_resources, fhir_openapi, request_fhir
from gateway.api.auth import User
from gateway.api.deps import ClientAddress, DbDep, SettingsDep, fhir_access
from gateway.api.errors import FhirError
from gateway.api.fhir_api import FhirResponse, fhir_base
from gateway.api.fhir_model import Entry, searchset
from gateway.api.fhir_search import handling_is_strict, parse_id, parse_search
from gateway.settings import GatewaySettings
from gateway.store import alert_deliveries, alert_fhir_reads
from gateway.store.alert_fhir_reads import COMMUNICATION, FLAG, TASK, AlertRecord
from gateway.store.audit import record_audit
from gateway.store.fhir_query import Cursor

router = APIRouter(prefix="/fhir", tags=["fhir"])
_BEARER = [Security(fhir_openapi.BEARER)]
_READ_ERRORS = (400, 401, 403, 404)
_SEARCH_ERRORS = (400, 401, 403)
_AUDIT_DETAIL_CHARS = 500

FlagSearcher = Annotated[User, Depends(fhir_access(FLAG, "search"))]
FlagReader = Annotated[User, Depends(fhir_access(FLAG, "read"))]
TaskSearcher = Annotated[User, Depends(fhir_access(TASK, "search"))]
TaskReader = Annotated[User, Depends(fhir_access(TASK, "read"))]
CommunicationSearcher = Annotated[User, Depends(fhir_access(COMMUNICATION, "search"))]
CommunicationReader = Annotated[User, Depends(fhir_access(COMMUNICATION, "read"))]


def _resource(
    conn: DbDep, resource_type: str, record: AlertRecord, settings: GatewaySettings
) -> dict[str, Any]:
    if resource_type == FLAG:
        return alert_resources.flag(record)
    if resource_type == TASK:
        return alert_resources.task(record)
    # What the last e-mail to the GP said, as the dispatcher wrote it (gateway.alerts.dispatcher).
    event_id = record.gp_emails.event_id
    message = None if event_id is None else alert_deliveries.message_facts(conn, record.id, event_id)
    return alert_resources.communication(
        record, message, web_base_url=settings.web_base_url, language=settings.default_language
    )


def _audit(conn: DbDep, user: User, request: Request, client: str, patient_ids: Iterable[str]) -> None:
    detail = f"{request.method} {request.url.path}?{request.url.query}".rstrip("?")[:_AUDIT_DETAIL_CHARS]
    record_audit(conn, user, "fhir-read", list(dict.fromkeys(patient_ids)), detail, client=client)


def _search(
    resource_type: str, request: Request, user: User, conn: DbDep, client: str, settings: GatewaySettings
) -> FhirResponse:
    strict = handling_is_strict(request.headers.get("prefer"))
    search = parse_search(resource_type, request.query_params.multi_items(), strict=strict)
    page = alert_fhir_reads.search_alerts(conn, user, search)
    entries = [
        Entry(_resource(conn, resource_type, r, settings), Cursor(r.raised_at, r.public_id))
        for r in page.rows
    ]
    _audit(conn, user, request, client, (r.patient_id for r in page.rows))
    return FhirResponse(searchset(fhir_base(request), search, entries, page.has_more, page.total))


def _read(
    resource_type: str,
    resource_id: str,
    request: Request,
    user: User,
    conn: DbDep,
    client: str,
    settings: GatewaySettings,
) -> FhirResponse:
    wanted = parse_id(resource_type, resource_id)
    record = alert_fhir_reads.alert_by_id(conn, user, resource_type, wanted)
    if record is None:
        raise FhirError(404, "not-found", f"{resource_type}/{resource_id} is not known")
    _audit(conn, user, request, client, [record.patient_id])
    return FhirResponse(_resource(conn, resource_type, record, settings))


def _search_route(resource_type: str) -> dict[str, Any]:
    return {
        "response_class": FhirResponse,
        "dependencies": _BEARER,
        "responses": fhir_openapi.responses(fhir_openapi.SEARCHSET, "A page of matches.", *_SEARCH_ERRORS),
        "openapi_extra": fhir_openapi.search(resource_type),
    }


def _read_route(resource_type: str) -> dict[str, Any]:
    return {
        "response_class": FhirResponse,
        "dependencies": _BEARER,
        "responses": fhir_openapi.responses(
            fhir_openapi.resource(resource_type), f"The {resource_type}.", *_READ_ERRORS
        ),
    }


_ID = "The id a search entry carries (a uuid)."


@router.get(f"/{FLAG}", **_search_route(FLAG))
def search_flags(
    request: Request, user: FlagSearcher, conn: DbDep, client: ClientAddress, settings: SettingsDep
) -> FhirResponse:
    """Search the alerts of the user's patients as Flags (patient, subject, status, _id, date, _count,
    _sort); newest first.

    Unknown parameters are ignored unless the request sends ``Prefer: handling=strict`` (then a 400).
    """
    return _search(FLAG, request, user, conn, client, settings)


@router.get(f"/{FLAG}/{{flag_id}}", **_read_route(FLAG))
def read_flag(
    flag_id: Annotated[str, fhir_openapi.fhir_id(_ID)],
    request: Request,
    user: FlagReader,
    conn: DbDep,
    client: ClientAddress,
    settings: SettingsDep,
) -> FhirResponse:
    """Read the Flag of one alert of one of the user's patients."""
    return _read(FLAG, flag_id, request, user, conn, client, settings)


@router.get(f"/{TASK}", **_search_route(TASK))
def search_tasks(
    request: Request, user: TaskSearcher, conn: DbDep, client: ClientAddress, settings: SettingsDep
) -> FhirResponse:
    """Search the care teams' Tasks of the alerts of the user's patients, and the patients' contact
    requests (patient, subject, status, _id, authored-on, _lastUpdated, _count, _sort); newest first.

    Unknown parameters are ignored unless the request sends ``Prefer: handling=strict`` (then a 400).
    """
    strict = handling_is_strict(request.headers.get("prefer"))
    search = parse_search(TASK, request.query_params.multi_items(), strict=strict)
    alerts = alert_fhir_reads.search_alerts(conn, user, search)
    requests = request_fhir.contact_request_tasks(conn, user, search)
    # Both page on (time, uuid) in the same order under the same cursor: the page is the first ``count``
    # of the two pages merged, and more follow when either had more or the merge left some out.
    merged = [
        *(Entry(_resource(conn, TASK, r, settings), Cursor(r.raised_at, r.public_id)) for r in alerts.rows),
        *requests.rows,
    ]
    merged.sort(key=lambda e: (e.position.at, e.position.key), reverse=search.descending)
    entries = merged[: search.count]
    has_more = alerts.has_more or requests.has_more or len(merged) > search.count
    patients = [str(e.resource["for"]["reference"]).removeprefix("Patient/") for e in entries]
    _audit(conn, user, request, client, patients)
    total = alerts.total + requests.total
    return FhirResponse(searchset(fhir_base(request), search, entries, has_more, total))


@router.get(f"/{TASK}/{{task_id}}", **_read_route(TASK))
def read_task(
    task_id: Annotated[str, fhir_openapi.fhir_id(_ID)],
    request: Request,
    user: TaskReader,
    conn: DbDep,
    client: ClientAddress,
    settings: SettingsDep,
) -> FhirResponse:
    """Read the Task of one alert, or one contact request, of one of the user's patients."""
    found = request_fhir.contact_request_task(conn, user, parse_id(TASK, task_id))
    if found is not None:
        resource, patient_id = found
        _audit(conn, user, request, client, [patient_id])
        return FhirResponse(resource)
    return _read(TASK, task_id, request, user, conn, client, settings)


@router.get(f"/{COMMUNICATION}", **_search_route(COMMUNICATION))
def search_communications(
    request: Request, user: CommunicationSearcher, conn: DbDep, client: ClientAddress, settings: SettingsDep
) -> FhirResponse:
    """Search the messages to the GPs of the user's patients about their alerts (patient, subject,
    status, _id, sent, _count); newest alert first.

    Unknown parameters are ignored unless the request sends ``Prefer: handling=strict`` (then a 400).
    """
    return _search(COMMUNICATION, request, user, conn, client, settings)


@router.get(f"/{COMMUNICATION}/{{communication_id}}", **_read_route(COMMUNICATION))
def read_communication(
    communication_id: Annotated[str, fhir_openapi.fhir_id(_ID)],
    request: Request,
    user: CommunicationReader,
    conn: DbDep,
    client: ClientAddress,
    settings: SettingsDep,
) -> FhirResponse:
    """Read the message to the GP about one alert of one of the user's patients."""
    return _read(COMMUNICATION, communication_id, request, user, conn, client, settings)
