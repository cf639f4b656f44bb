"""The reviews over FHIR: ``GET /fhir/ClinicalImpression?patient=...`` and ``.../ClinicalImpression/{id}``.

A person's bearer token whose SMART scopes grant ``user/ClinicalImpression.read`` (``deps.fhir_access``)
reads the reviews of the patients she may see (``gateway.store.access``); any other review is "not
found". Search parameters: ``patient`` (a reference; commas OR, repeats AND), ``_count`` and ``_cursor``
(keyset paging, newest first, the cursor being the last review's time and id), declared and parsed by
``fhir_search`` as every FHIR search is (unknown parameters ignored unless ``Prefer: handling=strict``,
anything malformed a 400 OperationOutcome) and listed in the CapabilityStatement. The answer is a
searchset Bundle built by ``fhir_model``; each review is shaped by ``clinical_impression``. Every export
writes a ``fhir-read`` audit row per patient.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Security

from gateway.api import fhir_openapi
from gateway.api.auth import User
from gateway.api.clinical_impression import clinical_impression
from gateway.api.deps import ClientAddress, DbDep, fhir_access
from gateway.api.errors import FhirError
from gateway.api.fhir_api import FhirResponse, fhir_base
from gateway.api.fhir_model import Entry, searchset
from gateway.api.fhir_search import handling_is_strict, parse_id, parse_search
from gateway.store.audit import record_audit
from gateway.store.fhir_query import Cursor, Search
from gateway.store.reviews import review_by_public_id, search_reviews

RESOURCE = "ClinicalImpression"
router = APIRouter(prefix="/fhir", tags=["fhir"])
_BEARER = [Security(fhir_openapi.BEARER)]
_AUDIT_DETAIL_CHARS = 500
# A review's FHIR id (reviews.public_id): a uuid as PostgreSQL writes it.
_PUBLIC_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Searcher = Annotated[User, Depends(fhir_access(RESOURCE, "search"))]
Reader = Annotated[User, Depends(fhir_access(RESOURCE, "read"))]


def _patients(search: Search) -> frozenset[str] | None:
    """The patients a search asks for (each criterion ORs its values; criteria AND); None: any."""
    wanted: frozenset[str] | None = None
    for criterion in search.criteria:
        ids = frozenset(getattr(value, "id", "") for value in criterion.alternatives)
        wanted = ids if wanted is None else wanted & ids
    return wanted


def _audit(conn: DbDep, user: User, request: Request, client: str, patient_ids: list[str]) -> None:
    detail = f"{request.method} {request.url.path}?{request.url.query}".rstrip("?")[:_AUDIT_DETAIL_CHARS]
    record_audit(conn, user, "fhir-read", list(dict.fromkeys(patient_ids)), detail, client=client)


@router.get(
    f"/{RESOURCE}",
    response_class=FhirResponse,
    dependencies=_BEARER,
    responses=fhir_openapi.responses(fhir_openapi.SEARCHSET, "A page of matches.", 400, 401, 403),
    openapi_extra=fhir_openapi.search(RESOURCE),
)
def search_clinical_impressions(
    request: Request, user: Searcher, conn: DbDep, client: ClientAddress
) -> FhirResponse:
    """Search the reviews of the user's patients (patient, _count); newest first.

    Unknown parameters are ignored unless the request sends ``Prefer: handling=strict`` (then a 400).
    """
    strict = handling_is_strict(request.headers.get("prefer"))
    search = parse_search(RESOURCE, request.query_params.multi_items(), strict=strict)
    patients = _patients(search)
    after = (
        None if search.cursor is None or search.cursor.at is None else (search.cursor.at, search.cursor.key)
    )
    if patients is not None and not patients:  # criteria that no patient meets: nothing to read
        entries: list[Entry] = []
        seen: list[str] = []
        has_more, total = False, 0
    else:
        found = search_reviews(
            conn, user, patient_ids=tuple(sorted(patients or ())), count=search.count, after=after
        )
        entries = [Entry(clinical_impression(r), Cursor(r.reviewed_at, r.public_id)) for r in found.reviews]
        seen = [r.patient_id for r in found.reviews]
        has_more, total = found.has_more, found.total
    _audit(conn, user, request, client, seen)
    return FhirResponse(searchset(fhir_base(request), search, entries, has_more, total))


@router.get(
    f"/{RESOURCE}/{{impression_id}}",
    response_class=FhirResponse,
    dependencies=_BEARER,
    responses=fhir_openapi.responses(
        fhir_openapi.resource(RESOURCE), "The ClinicalImpression.", 400, 401, 403, 404
    ),
)
def read_clinical_impression(
    impression_id: Annotated[str, fhir_openapi.fhir_id("The id a search entry carries (a uuid).")],
    request: Request,
    user: Reader,
    conn: DbDep,
    client: ClientAddress,
) -> FhirResponse:
    """Read one review of one of the user's patients, by the id its search entries carry."""
    wanted = parse_id(RESOURCE, impression_id)
    review = review_by_public_id(conn, user, wanted) if _PUBLIC_ID.fullmatch(wanted.lower()) else None
    if review is None:
        raise FhirError(404, "not-found", f"{RESOURCE}/{impression_id} is not known")
    _audit(conn, user, request, client, [review.patient_id])
    return FhirResponse(clinical_impression(review))
