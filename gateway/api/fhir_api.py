"""The FHIR R4 API under ``/fhir``: metadata, Observation read/search, Patient read/search, Device read
(sensors and hubs), RiskAssessment read/search, and the ``batch`` POST of hubs and system accounts.

Thin routes: parameters are parsed by ``fhir_search``, rows read by ``gateway.store.fhir_reads``,
resources and Bundles built by ``fhir_model``, a hub's Bundle decided and stored by ``fhir_batch``, a
system account's (a home-care or hospital system: staff change observations, hospital stays) by
``findr_fhir``. Everything but ``/fhir/metadata`` needs a bearer token: a person's to read, a hub's or
a system account's to post. Each read
asks ``deps.fhir_access`` for its resource type and interaction, so a token without the SMART scope (or
of a role that sees no clinical data) is 403. Reads see only the patients of the user's assignment
(``gateway.store.access``: a nurse's care teams, a GP's own patients in any municipality); anyone
else's resource is "not found" (404), never "forbidden", so its existence does not leak. Every read of
patient data writes a ``fhir-read`` audit row per patient seen, with the client's address. Whatever is
served for a patient enrolled as synthetic carries FHIR's test-data label.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Security
from fastapi.responses import JSONResponse

from gateway.api import fhir_batch, fhir_openapi, findr_fhir
from gateway.api.auth import HUB_ROLE, User
from gateway.api.capability import capability_statement
from gateway.api.deps import ClientAddress, DbDep, FhirPoster, PayloadDep, SettingsDep, fhir_access
from gateway.api.errors import FhirError
from gateway.api.fhir_model import (
    FHIR_JSON,
    Entry,
    device_resource,
    hub_resource,
    label_test_data,
    observation_id,
    patient_resource,
    risk_assessment_id,
    searchset,
    with_id,
)
from gateway.api.fhir_search import handling_is_strict, parse_id, parse_search
from gateway.store import fhir_reads
from gateway.store.audit import record_audit
from gateway.store.fhir_query import Cursor, Search
from gateway.store.fhir_reads import Conn, StoredResource
from gateway.store.patient_views import PatientRow, patient

router = APIRouter(prefix="/fhir", tags=["fhir"])
# In /openapi.json, every route but /metadata asks for a bearer token (deps.py does the asking).
_BEARER = [Security(fhir_openapi.BEARER)]
_READ_ERRORS = (400, 401, 403, 404)
_SEARCH_ERRORS = (400, 401, 403)

_AUDIT_DETAIL_CHARS = 500

# Who may do what, per resource type and interaction (deps.fhir_access: role and SMART scope).
ObservationSearcher = Annotated[User, Depends(fhir_access("Observation", "search"))]
ObservationReader = Annotated[User, Depends(fhir_access("Observation", "read"))]
PatientSearcher = Annotated[User, Depends(fhir_access("Patient", "search"))]
PatientReader = Annotated[User, Depends(fhir_access("Patient", "read"))]
DeviceReader = Annotated[User, Depends(fhir_access("Device", "read"))]
RiskAssessmentSearcher = Annotated[User, Depends(fhir_access("RiskAssessment", "search"))]
RiskAssessmentReader = Annotated[User, Depends(fhir_access("RiskAssessment", "read"))]


class FhirResponse(JSONResponse):
    """A JSON response with FHIR's media type."""

    media_type = FHIR_JSON


def fhir_base(request: Request) -> str:
    """The FHIR base URL as this request reached the server."""
    return f"{str(request.base_url).rstrip('/')}/fhir"


def _audit(conn: Conn, user: User, request: Request, client: str, patient_ids: Iterable[str]) -> None:
    detail = f"{request.method} {request.url.path}?{request.url.query}".rstrip("?")[:_AUDIT_DETAIL_CHARS]
    record_audit(conn, user, "fhir-read", list(dict.fromkeys(patient_ids)), detail, client=client)


def _search(request: Request, resource_type: str) -> Search:
    """The request's search; unknown parameters are ignored unless it sends ``Prefer: handling=strict``."""
    strict = handling_is_strict(request.headers.get("prefer"))
    return parse_search(resource_type, request.query_params.multi_items(), strict=strict)


def _served(row: StoredResource, resource_id: str) -> dict[str, Any]:
    """A stored resource as served: with the server's id, and labelled when its patient is synthetic."""
    resource = with_id(row.resource, resource_id)
    return label_test_data(resource) if row.synthetic else resource


def _observation(row: StoredResource) -> dict[str, Any]:
    return _served(row, observation_id(row.municipality_id, *fhir_reads.reading_of_key(row.key)))


def _patient(row: PatientRow) -> dict[str, Any]:
    return patient_resource(row.id, row.name, row.birth_date, row.municipality_name, synthetic=row.synthetic)


@router.get(
    "/metadata",
    response_class=FhirResponse,
    responses=fhir_openapi.responses(fhir_openapi.resource("CapabilityStatement"), "What is implemented."),
)
def metadata(request: Request) -> FhirResponse:
    """The CapabilityStatement: what this server implements (no token needed)."""
    return FhirResponse(capability_statement(fhir_base(request)))


@router.get(
    "/Observation",
    response_class=FhirResponse,
    dependencies=_BEARER,
    responses=fhir_openapi.responses(fhir_openapi.SEARCHSET, "A page of matches.", *_SEARCH_ERRORS),
    openapi_extra=fhir_openapi.search("Observation"),
)
def search_observations(
    request: Request, user: ObservationSearcher, conn: DbDep, client: ClientAddress
) -> FhirResponse:
    """Search the Observations of the user's patients (patient, code, date, _count, _sort); newest first.

    Unknown parameters are ignored unless the request sends ``Prefer: handling=strict`` (then a 400).
    """
    search = _search(request, "Observation")
    page = fhir_reads.search_observations(conn, user, search)
    entries = [Entry(_observation(r), Cursor(r.at, r.key)) for r in page.rows]
    _audit(conn, user, request, client, (r.patient_id for r in page.rows))
    return FhirResponse(searchset(fhir_base(request), search, entries, page.has_more, page.total))


@router.get(
    "/Observation/{observation_id}",
    response_class=FhirResponse,
    dependencies=_BEARER,
    responses=fhir_openapi.responses(fhir_openapi.resource("Observation"), "The Observation.", *_READ_ERRORS),
)
def read_observation(
    observation_id: Annotated[str, fhir_openapi.fhir_id("The id a search entry of the Observation carries.")],
    request: Request,
    user: ObservationReader,
    conn: DbDep,
    client: ClientAddress,
) -> FhirResponse:
    """Read one Observation by the id its search entries carry."""
    row = fhir_reads.observation_by_id(conn, user, parse_id("Observation", observation_id))
    if row is None:
        raise FhirError(404, "not-found", f"Observation/{observation_id} is not known")
    _audit(conn, user, request, client, [row.patient_id])
    return FhirResponse(_served(row, observation_id.lower()))


@router.get(
    "/Patient",
    response_class=FhirResponse,
    dependencies=_BEARER,
    responses=fhir_openapi.responses(fhir_openapi.SEARCHSET, "A page of matches.", *_SEARCH_ERRORS),
    openapi_extra=fhir_openapi.search("Patient"),
)
def search_patients(
    request: Request, user: PatientSearcher, conn: DbDep, client: ClientAddress
) -> FhirResponse:
    """Search the user's Patients (_id, _count); by id.

    Unknown parameters are ignored unless the request sends ``Prefer: handling=strict`` (then a 400).
    """
    search = _search(request, "Patient")
    page = fhir_reads.search_patients(conn, user, search)
    entries = [Entry(_patient(row), Cursor(None, row.id)) for row in page.rows]
    _audit(conn, user, request, client, (row.id for row in page.rows))
    return FhirResponse(searchset(fhir_base(request), search, entries, page.has_more, page.total))


@router.get(
    "/Patient/{patient_id}",
    response_class=FhirResponse,
    dependencies=_BEARER,
    responses=fhir_openapi.responses(fhir_openapi.resource("Patient"), "The Patient.", *_READ_ERRORS),
)
def read_patient(
    patient_id: Annotated[str, fhir_openapi.fhir_id("The Patient's id.")],
    request: Request,
    user: PatientReader,
    conn: DbDep,
    client: ClientAddress,
) -> FhirResponse:
    """Read one Patient of the user's assignment."""
    row = patient(conn, user, parse_id("Patient", patient_id))
    if row is None:
        raise FhirError(404, "not-found", f"Patient/{patient_id} is not known")
    _audit(conn, user, request, client, [row.id])
    return FhirResponse(_patient(row))


@router.get(
    "/Device/{device_id}",
    response_class=FhirResponse,
    dependencies=_BEARER,
    responses=fhir_openapi.responses(fhir_openapi.resource("Device"), "The Device.", *_READ_ERRORS),
)
def read_device(
    device_id: Annotated[str, fhir_openapi.fhir_id("The Device's id: a sensor's or a hub's.")],
    request: Request,
    user: DeviceReader,
    conn: DbDep,
    client: ClientAddress,
) -> FhirResponse:
    """Read one enrolled sensor (PHD IG shape) or hub of a patient of the user's assignment."""
    row = fhir_reads.device(conn, user, parse_id("Device", device_id))
    if row is None:
        raise FhirError(404, "not-found", f"Device/{device_id} is not known")
    _audit(conn, user, request, client, [row.patient_id])
    if row.is_hub or row.kind is None:
        resource = hub_resource(row.id, row.patient_id)
    else:
        resource = device_resource(row.id, row.kind, row.address, row.patient_id)
    return FhirResponse(label_test_data(resource) if row.synthetic else resource)


@router.post(
    "",
    response_class=FhirResponse,
    dependencies=_BEARER,
    responses=fhir_openapi.responses(
        fhir_openapi.BATCH_RESPONSE, "One answer per entry, in order.", 400, 401, 403, 413, 415
    ),
    openapi_extra=fhir_openapi.batch_request(),
)
def post_batch(
    poster: FhirPoster, payload: PayloadDep, conn: DbDep, settings: SettingsDep, client: ClientAddress
) -> FhirResponse:
    """Store a hub's ``batch`` Bundle of Observations as MQTT ingest would, or a system account's staff
    change observations or hospital stays (``findr_fhir``); answer a batch-response."""
    if poster.user.role != HUB_ROLE:
        status, body = findr_fhir.post(
            conn, poster, payload, max_bytes=settings.max_payload_bytes, client=client
        )
        return FhirResponse(body, status_code=status)
    hub = poster.user
    outcome = fhir_batch.decide(conn, hub.municipality_id, hub.username, payload, settings.max_payload_bytes)
    stored = fhir_batch.store(conn, outcome, payload, settings.scorer_channel)
    if stored.outcome.message_rejected:
        status, report = fhir_batch.message_error(stored.outcome)
        return FhirResponse(report, status_code=status)
    return FhirResponse(fhir_batch.batch_response(stored))


@router.get(
    "/RiskAssessment",
    response_class=FhirResponse,
    dependencies=_BEARER,
    responses=fhir_openapi.responses(fhir_openapi.SEARCHSET, "A page of matches.", *_SEARCH_ERRORS),
    openapi_extra=fhir_openapi.search("RiskAssessment"),
)
def search_risk_assessments(
    request: Request, user: RiskAssessmentSearcher, conn: DbDep, client: ClientAddress
) -> FhirResponse:
    """Search the stored RiskAssessments of the user's patients (patient, _count); newest first.

    Unknown parameters are ignored unless the request sends ``Prefer: handling=strict`` (then a 400).
    """
    search = _search(request, "RiskAssessment")
    page = fhir_reads.search_risk_assessments(conn, user, search)
    entries = [Entry(_served(r, risk_assessment_id(r.key)), Cursor(r.at, r.key)) for r in page.rows]
    _audit(conn, user, request, client, (r.patient_id for r in page.rows))
    return FhirResponse(searchset(fhir_base(request), search, entries, page.has_more, page.total))


@router.get(
    "/RiskAssessment/{assessment_id}",
    response_class=FhirResponse,
    dependencies=_BEARER,
    responses=fhir_openapi.responses(
        fhir_openapi.resource("RiskAssessment"), "The RiskAssessment.", *_READ_ERRORS
    ),
)
def read_risk_assessment(
    assessment_id: Annotated[str, fhir_openapi.fhir_id("The id a search entry carries (a uuid).")],
    request: Request,
    user: RiskAssessmentReader,
    conn: DbDep,
    client: ClientAddress,
) -> FhirResponse:
    """Read one stored RiskAssessment by the id its search entries (and their fullUrl) carry."""
    wanted = parse_id("RiskAssessment", assessment_id)
    row = fhir_reads.risk_assessment_by_id(conn, user, wanted)
    if row is None:
        raise FhirError(404, "not-found", f"RiskAssessment/{assessment_id} is not known")
    _audit(conn, user, request, client, [row.patient_id])
    return FhirResponse(_served(row, row.key))
