"""The FHIR R4 API under ``/fhir``: metadata, Observation read/search, Patient and Device read,
RiskAssessment search, and the hubs' ``batch`` POST.

Thin routes: parameters are parsed by ``fhir_search``, rows read by ``queries``, resources and Bundles
built by ``fhir_model``, a hub's Bundle decided and stored by ``fhir_batch``. Everything but
``/fhir/metadata`` needs a bearer token: a person's to read, a hub's to post. Reads see only the user's
municipality; another municipality's patient or device is "not found" (404), never "forbidden", so its
existence does not leak. Every read of patient data writes a ``fhir-read`` audit row per patient seen.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse

from gateway.api import fhir_batch, fhir_openapi, queries
from gateway.api.auth import User
from gateway.api.capability import capability_statement
from gateway.api.deps import DbDep, FhirUser, HubUser, PayloadDep, SettingsDep
from gateway.api.errors import FhirError
from gateway.api.fhir_model import (
    FHIR_JSON,
    Entry,
    device_resource,
    observation_id,
    patient_resource,
    risk_assessment_id,
    searchset,
    with_id,
)
from gateway.api.fhir_search import Cursor, parse_id, parse_search

router = APIRouter(prefix="/fhir", tags=["fhir"])
# In /openapi.json, every route but /metadata asks for a bearer token (deps.py does the asking).
_BEARER = [Security(fhir_openapi.BEARER)]
_READ_ERRORS = (400, 401, 403, 404)

_AUDIT_DETAIL_CHARS = 500


class FhirResponse(JSONResponse):
    """A JSON response with FHIR's media type."""

    media_type = FHIR_JSON


def fhir_base(request: Request) -> str:
    """The FHIR base URL as this request reached the server."""
    return f"{str(request.base_url).rstrip('/')}/fhir"


def _audit(conn: queries.Conn, user: User, request: Request, patient_ids: list[str]) -> None:
    detail = f"{request.method} {request.url.path}?{request.url.query}".rstrip("?")[:_AUDIT_DETAIL_CHARS]
    queries.record_audit(conn, user, "fhir-read", patient_ids, detail)


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
    responses=fhir_openapi.responses(fhir_openapi.SEARCHSET, "A page of matches.", 400, 401, 403),
    openapi_extra=fhir_openapi.search("Observation"),
)
def search_observations(request: Request, user: FhirUser, conn: DbDep) -> FhirResponse:
    """Search the municipality's Observations (patient, code, date, _count); newest first."""
    search = parse_search("Observation", request.query_params.multi_items())
    rows, more = queries.search_observations(conn, user.municipality_id, search)
    entries = [
        Entry(
            with_id(r.resource, observation_id(user.municipality_id, *queries.reading_of_key(r.key))),
            Cursor(r.at, r.key),
        )
        for r in rows
    ]
    _audit(conn, user, request, queries.patient_ids(rows))
    return FhirResponse(searchset(fhir_base(request), search, entries, more))


@router.get(
    "/Observation/{observation_id}",
    response_class=FhirResponse,
    dependencies=_BEARER,
    responses=fhir_openapi.responses(fhir_openapi.resource("Observation"), "The Observation.", *_READ_ERRORS),
)
def read_observation(
    observation_id: Annotated[str, fhir_openapi.fhir_id("The id a search entry of the Observation carries.")],
    request: Request,
    user: FhirUser,
    conn: DbDep,
) -> FhirResponse:
    """Read one Observation by the id its search entries carry."""
    row = queries.observation_by_id(conn, user.municipality_id, parse_id("Observation", observation_id))
    if row is None:
        raise FhirError(404, "not-found", f"Observation/{observation_id} is not known")
    _audit(conn, user, request, [row.patient_id])
    return FhirResponse(with_id(row.resource, observation_id.lower()))


@router.get(
    "/Patient/{patient_id}",
    response_class=FhirResponse,
    dependencies=_BEARER,
    responses=fhir_openapi.responses(fhir_openapi.resource("Patient"), "The Patient.", *_READ_ERRORS),
)
def read_patient(
    patient_id: Annotated[str, fhir_openapi.fhir_id("The Patient's id.")],
    request: Request,
    user: FhirUser,
    conn: DbDep,
) -> FhirResponse:
    """Read one Patient of the user's municipality."""
    row = queries.patient(conn, user.municipality_id, parse_id("Patient", patient_id))
    if row is None:
        raise FhirError(404, "not-found", f"Patient/{patient_id} is not known")
    _audit(conn, user, request, [row.id])
    return FhirResponse(patient_resource(row.id, row.name, row.birth_date, row.municipality_name))


@router.get(
    "/Device/{device_id}",
    response_class=FhirResponse,
    dependencies=_BEARER,
    responses=fhir_openapi.responses(fhir_openapi.resource("Device"), "The Device.", *_READ_ERRORS),
)
def read_device(
    device_id: Annotated[str, fhir_openapi.fhir_id("The Device's id.")],
    request: Request,
    user: FhirUser,
    conn: DbDep,
) -> FhirResponse:
    """Read one enrolled Device of the user's municipality (PHD IG shape)."""
    row = queries.device(conn, user.municipality_id, parse_id("Device", device_id))
    if row is None:
        raise FhirError(404, "not-found", f"Device/{device_id} is not known")
    _audit(conn, user, request, [row.patient_id])
    return FhirResponse(device_resource(row.id, row.kind, row.address, row.patient_id))


@router.post(
    "",
    response_class=FhirResponse,
    dependencies=_BEARER,
    responses=fhir_openapi.responses(
        fhir_openapi.BATCH_RESPONSE, "One answer per entry, in order.", 400, 401, 403, 413, 415
    ),
    openapi_extra=fhir_openapi.batch_request(),
)
def post_batch(hub: HubUser, payload: PayloadDep, conn: DbDep, settings: SettingsDep) -> FhirResponse:
    """Store a hub's ``batch`` Bundle of Observations as MQTT ingest would; answer a batch-response."""
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
    responses=fhir_openapi.responses(fhir_openapi.SEARCHSET, "A page of matches.", 400, 401, 403),
    openapi_extra=fhir_openapi.search("RiskAssessment"),
)
def search_risk_assessments(request: Request, user: FhirUser, conn: DbDep) -> FhirResponse:
    """Search the municipality's stored RiskAssessments (patient, _count); newest first."""
    search = parse_search("RiskAssessment", request.query_params.multi_items())
    rows, more = queries.search_risk_assessments(conn, user.municipality_id, search)
    entries = [Entry(with_id(r.resource, risk_assessment_id(r.key)), Cursor(r.at, r.key)) for r in rows]
    _audit(conn, user, request, queries.patient_ids(rows))
    return FhirResponse(searchset(fhir_base(request), search, entries, more))
