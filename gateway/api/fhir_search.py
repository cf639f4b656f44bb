"""FHIR search parameters: one declared table, parsed and formatted here and nowhere else.

``SEARCH_PARAMS`` says which parameters each resource type supports (the CapabilityStatement in
``fhir/capability-statement.json`` must list exactly these; a test keeps the two equal). ``parse_search``
turns a query string into a ``Search`` of the store's plain values (``gateway.store.fhir_query``:
``Reference``, ``Token``, ``Period``, ``ResourceId``), rejecting anything malformed with a ``FhirError``;
``format_search`` turns a ``Search`` back into the query string of a ``self`` or ``next`` link.
``SORT_KEYS`` says which ``_sort`` keys each resource type supports. Turning criteria and order into SQL
is left to ``gateway.store.fhir_reads``.

Unknown parameters (``_summary``, ``_format``, a modifier this server lacks ...) are ignored, as FHIR
servers do by default, unless the client sends ``Prefer: handling=strict`` (``handling_is_strict``):
then they are a 400 (FHIR R4 search, 3.1.1.5). Either way the ``self`` link lists only the parameters
that were used.

Conventions: parameters repeat with AND, commas inside one value mean OR (FHIR's rules). Dates without a
time zone are taken as UTC; a date means the whole range its precision covers (``2024-05`` is all of May).
Paging is by an opaque ``_cursor`` (keyset: the last row's time and key, or a Patient's id), which
``next`` links carry and clients only copy; the links also carry ``_sort``, so a cursor is always read in
the order it was made in.

Every value is untrusted: whatever reaches the store, ``int()`` or datetime arithmetic has been
checked here first (ASCII digits of bounded length, instants that exist in UTC, text PostgreSQL can hold),
so a malformed value is a 400 OperationOutcome and never a server error.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlencode

from gateway.api.errors import FhirError
from gateway.store.fhir_query import (
    Criterion,
    Cursor,
    Period,
    Reference,
    ResourceId,
    Search,
    SearchValue,
    Sort,
    Token,
)

DEFAULT_COUNT = 20
MAX_COUNT = 100
COUNT_PARAM = "_count"
CURSOR_PARAM = "_cursor"
SORT_PARAM = "_sort"

ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# What PostgreSQL text cannot hold (NUL) or UTF-8 cannot encode (lone surrogates): never sent to it.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
# FHIR strings and codes hold no control characters (R4 datatypes, "string"), nor what PostgreSQL cannot.
_NOT_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
# A count is plain ASCII digits; 18 of them always fit int() and need no more than capping at MAX_COUNT.
_COUNT = re.compile(r"[0-9]{1,18}")
# A cursor this server issues is base64 of an instant and an Observation identifier (at most 256
# characters, fhir_contract.validate): well under this; longer text is refused before it is decoded.
_MAX_CURSOR_CHARS = 4096
# A RiskAssessment's cursor key is its public id (scores.public_id), a uuid as PostgreSQL writes it.
_PUBLIC_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# How much of a refused value a diagnostic repeats.
_SHOWN_CHARS = 80


def _shown(value: str) -> str:
    """A refused value as a diagnostic quotes it: cut short, so the answer stays small."""
    return repr(value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "...")


@dataclass(frozen=True, slots=True)
class SearchParam:
    """A supported search parameter as the CapabilityStatement declares it, with its value parser."""

    name: str
    type: str  # FHIR search parameter type: reference, token, date, number
    definition: str
    documentation: str
    parse: Callable[[str], SearchValue]


def parse_reference(value: str) -> Reference:
    """``Patient/123`` or ``123`` -> Reference('123')."""
    kind, _, ident = value.rpartition("/")
    if kind not in ("", "Patient") or not ID_PATTERN.fullmatch(ident):
        raise FhirError(400, "invalid", f"patient must be 'Patient/<id>' or '<id>', not {value!r}")
    return Reference(ident)


def parse_resource_id(value: str) -> ResourceId:
    """``_id``: a FHIR id -> ResourceId; anything else is a 400."""
    if not ID_PATTERN.fullmatch(value):
        raise FhirError(400, "invalid", f"_id must be a FHIR id, not {_shown(value)}")
    return ResourceId(value)


def parse_token(value: str) -> Token:
    """``system|code`` or ``code`` -> Token; control characters (NUL among them) are a 400."""
    system, bar, code = value.rpartition("|")
    if not code or _NOT_TEXT.search(value):
        raise FhirError(400, "invalid", f"code must be 'system|code' or 'code', not {_shown(value)}")
    return Token(system if bar and system else None, code)


# ASCII: Python's \d also matches other scripts' digits, which int() would read as if they were ASCII.
_DATE = re.compile(
    r"(?P<prefix>[a-z]{2})?"
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<fraction>\.\d+)?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?",
    re.ASCII,
)
_SUPPORTED_PREFIXES = ("eq", "gt", "ge", "lt", "le")


def _date_range(match: re.Match[str]) -> tuple[datetime, datetime]:
    """The instant range ``[start, end)`` a date value of any precision covers."""
    g = match.groupdict()
    year = int(g["year"])
    if g["month"] is None:
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    month = int(g["month"])
    if g["day"] is None:
        start = datetime(year, month, 1, tzinfo=UTC)
        return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    if g["hour"] is None:
        start = datetime(year, month, int(g["day"]), tzinfo=UTC)
        return start, start + timedelta(days=1)
    zone = UTC
    if g["zone"] not in (None, "Z"):
        sign = -1 if g["zone"][0] == "-" else 1
        zone = timezone(sign * timedelta(hours=int(g["zone"][1:3]), minutes=int(g["zone"][4:6])))
    start = datetime(
        year, month, int(g["day"]), int(g["hour"]), int(g["minute"]), int(g["second"] or 0), tzinfo=zone
    )
    if g["second"] is None:
        return start, start + timedelta(minutes=1)
    if g["fraction"] is None:
        return start, start + timedelta(seconds=1)
    instant = start + timedelta(seconds=float("0" + g["fraction"]))
    return instant, instant + timedelta(microseconds=1)


def parse_date(value: str) -> Period:
    """``[prefix]date`` -> Period; prefixes eq (default), gt, ge, lt, le."""
    match = _DATE.fullmatch(value)
    if match is None:
        expected = "[eq|gt|ge|lt|le]YYYY[-MM[-DD[Thh:mm[:ss]]]][zone]"
        raise FhirError(400, "invalid", f"date must be {expected}, not {value!r}")
    prefix = match["prefix"] or "eq"
    if prefix not in _SUPPORTED_PREFIXES:
        supported = ", ".join(_SUPPORTED_PREFIXES)
        raise FhirError(400, "not-supported", f"date prefix {prefix!r} is not supported; use {supported}")
    try:
        # Both ends must exist as UTC instants: the day after 9999-12-31, or 9999-12-31T23:00-01:00 in
        # UTC, is past what datetime (and so the answer's links and rows) can hold.
        start, end = (moment.astimezone(UTC) for moment in _date_range(match))
    except (ValueError, OverflowError) as exc:
        raise FhirError(400, "invalid", f"date {_shown(value)} is not a date this server can search") from exc
    return {
        "eq": Period(start, end),
        "gt": Period(end, None),
        "ge": Period(start, None),
        "lt": Period(None, start),
        "le": Period(None, end),
    }[prefix]


_PATIENT = SearchParam(
    "patient",
    "reference",
    "http://hl7.org/fhir/SearchParameter/clinical-patient",
    "The patient the resource is about: 'Patient/<id>' or '<id>'.",
    parse_reference,
)


def _alert_id(resource_type: str) -> SearchParam:
    return SearchParam(
        "_id",
        "token",
        "http://hl7.org/fhir/SearchParameter/Resource-id",
        f"The {resource_type}'s id (a uuid); commas give several.",
        parse_resource_id,
    )


def _alert_subject(resource_type: str, field: str) -> SearchParam:
    return SearchParam(
        "subject",
        "reference",
        f"http://hl7.org/fhir/SearchParameter/{resource_type}-subject",
        f"{resource_type}.{field}, the patient: 'Patient/<id>' or '<id>'.",
        parse_reference,
    )


def _alert_status(definition: str, resource_type: str, codes: str) -> SearchParam:
    return SearchParam(
        "status",
        "token",
        definition,
        f"{resource_type}.status as served: {codes}.",
        parse_token,
    )


def _alert_date(name: str, definition: str, documentation: str) -> SearchParam:
    return SearchParam(
        name,
        "date",
        definition,
        f"{documentation} Prefixes eq, gt, ge, lt, le; no zone means UTC.",
        parse_date,
    )


# An alert as FHIR (gateway.api.alert_fhir, docs/fhir.md): a Flag on the patient, the care team's Task,
# the e-mail to the GP as a Communication. A status parameter matches the status a resource is served
# with. R4 has no search parameter for Flag.status: its definition is left empty (homewatch's own).
_ALERT_PARAMS: Mapping[str, Mapping[str, SearchParam]] = {
    "Flag": {
        "patient": _PATIENT,
        "subject": _alert_subject("Flag", "subject"),
        "status": _alert_status("", "Flag", "active (the alert is not resolved) or inactive"),
        "_id": _alert_id("Flag"),
        "date": _alert_date(
            "date", "http://hl7.org/fhir/SearchParameter/clinical-date", "Flag.period.start (raised)."
        ),
    },
    "Task": {
        "patient": SearchParam(
            "patient",
            "reference",
            "http://hl7.org/fhir/SearchParameter/Task-patient",
            "Task.for, the patient: 'Patient/<id>' or '<id>'.",
            parse_reference,
        ),
        "subject": _alert_subject("Task", "for"),
        "status": _alert_status(
            "http://hl7.org/fhir/SearchParameter/Task-status",
            "Task",
            "requested, accepted, in-progress, on-hold or completed",
        ),
        "_id": _alert_id("Task"),
        "authored-on": _alert_date(
            "authored-on", "http://hl7.org/fhir/SearchParameter/Task-authored-on", "Task.authoredOn (raised)."
        ),
        "_lastUpdated": _alert_date(
            "_lastUpdated",
            "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
            "meta.lastUpdated (= Task.lastModified: the alert's last change).",
        ),
    },
    "Communication": {
        "patient": SearchParam(
            "patient",
            "reference",
            "http://hl7.org/fhir/SearchParameter/Communication-patient",
            "Communication.subject, the patient: 'Patient/<id>' or '<id>'.",
            parse_reference,
        ),
        "subject": _alert_subject("Communication", "subject"),
        "status": _alert_status(
            "http://hl7.org/fhir/SearchParameter/Communication-status",
            "Communication",
            "completed (e-mailed), in-progress (queued) or not-done",
        ),
        "_id": _alert_id("Communication"),
        "sent": _alert_date(
            "sent", "http://hl7.org/fhir/SearchParameter/Communication-sent", "Communication.sent."
        ),
    },
}


SEARCH_PARAMS: Mapping[str, Mapping[str, SearchParam]] = {
    "Observation": {
        "patient": _PATIENT,
        "code": SearchParam(
            "code",
            "token",
            "http://hl7.org/fhir/SearchParameter/clinical-code",
            "Observation.code: 'system|code' or 'code' (LOINC or IEEE 11073 MDC).",
            parse_token,
        ),
        "date": SearchParam(
            "date",
            "date",
            "http://hl7.org/fhir/SearchParameter/clinical-date",
            "Observation.effective with prefixes eq, gt, ge, lt, le; no zone means UTC.",
            parse_date,
        ),
    },
    "RiskAssessment": {"patient": _PATIENT},
    # The weekly reviews (gateway.api.review_fhir).
    "ClinicalImpression": {"patient": _PATIENT},
    # The patients' answers to the daily symptom checks (gateway.api.request_fhir).
    "QuestionnaireResponse": {
        "patient": _PATIENT,
        "subject": _alert_subject("QuestionnaireResponse", "subject"),
        "_id": _alert_id("QuestionnaireResponse"),
        "authored": _alert_date(
            "authored",
            "http://hl7.org/fhir/SearchParameter/QuestionnaireResponse-authored",
            "QuestionnaireResponse.authored (when the patient answered).",
        ),
    },
    "Patient": {
        "_id": SearchParam(
            "_id",
            "token",
            "http://hl7.org/fhir/SearchParameter/Resource-id",
            "The Patient's id; commas give several.",
            parse_resource_id,
        ),
    },
    **_ALERT_PARAMS,
}

# The ``_sort`` keys each resource type supports (each orders by the time its ``date`` parameter searches).
# Without ``_sort``: Observation, RiskAssessment and ClinicalImpression newest first, Patient by id.
SORT_KEYS: Mapping[str, tuple[str, ...]] = {
    "Observation": ("date",),
    "RiskAssessment": (),
    "ClinicalImpression": (),
    "QuestionnaireResponse": ("authored",),
    "Patient": (),
    # Alerts: newest raised first; a Flag and a Task sort on when the alert was raised.
    "Flag": ("date",),
    "Task": ("authored-on",),
    "Communication": (),
}


def encode_cursor(cursor: Cursor) -> str:
    """The opaque text of a cursor, as ``next`` links carry it."""
    at = None if cursor.at is None else cursor.at.isoformat()
    raw = json.dumps([at, cursor.key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(text: str) -> Cursor:
    """The cursor of a ``next`` link (its instant in UTC, or none); anything else is a 400.

    A client may send any text: too long, not base64, JSON nested past the parser's recursion limit, an
    instant without a zone or outside what UTC can hold, a key PostgreSQL cannot hold. All are refused.
    """
    try:
        if len(text) > _MAX_CURSOR_CHARS:
            raise ValueError("longer than any cursor this server issues")
        at, key = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(key, str) or _UNSTORABLE.search(key):
            raise ValueError("the cursor's key is not one this server writes")
        if at is None:
            return Cursor(None, key)
        parsed = datetime.fromisoformat(at)
        # encode_cursor writes isoformat(): anything else (fromisoformat is lenient) was not issued here.
        if parsed.isoformat() != at or parsed.tzinfo is None:
            raise ValueError("the cursor's instant is not one this server writes")
        parsed = parsed.astimezone(UTC)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise FhirError(400, "invalid", f"{CURSOR_PARAM} is not one this server issued") from exc
    return Cursor(parsed, key)


# What a cursor must hold, per resource type: an Observation's an instant and its key (any text
# decode_cursor lets through), a RiskAssessment's and a ClinicalImpression's an instant and its public id
# (scores.public_id, reviews.public_id), a Patient's its id alone.
_CURSOR_OK: Mapping[str, Callable[[Cursor], bool]] = {
    "Observation": lambda cursor: cursor.at is not None,
    "RiskAssessment": lambda cursor: cursor.at is not None and _PUBLIC_ID.fullmatch(cursor.key) is not None,
    "ClinicalImpression": lambda cursor: (
        cursor.at is not None and _PUBLIC_ID.fullmatch(cursor.key) is not None
    ),
    "Patient": lambda cursor: cursor.at is None and ID_PATTERN.fullmatch(cursor.key) is not None,
    # An alert's resources page on (raised_at, alerts.public_id), a contact request's Task and an answer
    # on (authored, public_id).
    **dict.fromkeys(
        ("Flag", "Task", "Communication", "QuestionnaireResponse"),
        lambda cursor: cursor.at is not None and _PUBLIC_ID.fullmatch(cursor.key) is not None,
    ),
}


def _parse_cursor(resource_type: str, text: str) -> Cursor:
    cursor = decode_cursor(text)
    if not _CURSOR_OK[resource_type](cursor):
        raise FhirError(400, "invalid", f"{CURSOR_PARAM} is not one this server issued")
    return cursor


def _parse_count(value: str) -> int:
    """Plain ASCII digits, at least 1, capped at ``MAX_COUNT``; anything else is a 400."""
    if not _COUNT.fullmatch(value):
        message = f"{COUNT_PARAM} must be a whole number in ASCII digits, not {_shown(value)}"
        raise FhirError(400, "invalid", message)
    count = int(value)
    if count < 1:
        raise FhirError(400, "invalid", f"{COUNT_PARAM} must be at least 1")
    return min(count, MAX_COUNT)


def parse_id(resource_type: str, value: str) -> str:
    """The id of a read (``/fhir/{resource_type}/{id}``); what cannot be a FHIR id is a 400."""
    if not ID_PATTERN.fullmatch(value):
        message = f"{resource_type} id must be 1-64 of A-Z, a-z, 0-9, '-' and '.', not {_shown(value)}"
        raise FhirError(400, "invalid", message)
    return value


def parse_sort(resource_type: str, value: str) -> Sort:
    """``date`` (oldest first) or ``-date`` (newest first); anything else is a 400."""
    keys = SORT_KEYS[resource_type]
    key = value.removeprefix("-")
    if key not in keys:
        supported = ", ".join(f"{k}, -{k}" for k in keys) or "none"
        message = f"{SORT_PARAM}={value!r} is not supported for {resource_type}; supported: {supported}"
        raise FhirError(400, "not-supported", message)
    return Sort(key, value.startswith("-"))


def handling_is_strict(prefer: str | None) -> bool:
    """Whether a ``Prefer`` header asks for ``handling=strict`` (unknown search parameters are errors)."""
    preferences = (part.strip().lower().replace(" ", "") for part in (prefer or "").split(","))
    return "handling=strict" in preferences


def parse_search(resource_type: str, items: Sequence[tuple[str, str]], *, strict: bool = False) -> Search:
    """Parse a query string's items for ``resource_type``; malformed parameters are a 400, and so are
    unknown ones when ``strict`` (else they are ignored, and left out of ``Search.given``)."""
    params = SEARCH_PARAMS[resource_type]
    criteria: list[Criterion] = []
    given: list[tuple[str, str]] = []
    count: int | None = None
    cursor: Cursor | None = None
    sort: Sort | None = None
    seen: set[str] = set()
    for name, value in items:
        if name in (COUNT_PARAM, CURSOR_PARAM, SORT_PARAM):
            if name in seen:
                raise FhirError(400, "invalid", f"{name} may be given only once")
            seen.add(name)
            if name == COUNT_PARAM:
                count = _parse_count(value)
            elif name == CURSOR_PARAM:
                cursor = _parse_cursor(resource_type, value)
            else:
                sort = parse_sort(resource_type, value)
            continue
        param = params.get(name)
        if param is None and not strict:
            continue
        if param is None:
            sort_param = [SORT_PARAM] if SORT_KEYS[resource_type] else []
            supported = ", ".join([*params, COUNT_PARAM, *sort_param])
            message = f"unknown search parameter {name!r} for {resource_type}; supported: {supported}"
            raise FhirError(400, "not-supported", message)
        if not value:
            raise FhirError(400, "invalid", f"search parameter {name!r} has no value")
        criteria.append(Criterion(name, tuple(param.parse(part) for part in value.split(","))))
        given.append((name, value))
    return Search(resource_type, tuple(criteria), count or DEFAULT_COUNT, cursor, tuple(given), sort)


def format_search(search: Search, cursor: Cursor | None) -> str:
    """The query string of ``search`` at page ``cursor`` (None: the first page)."""
    items = [*search.given, (COUNT_PARAM, str(search.count))]
    if search.sort is not None:
        items.append((SORT_PARAM, str(search.sort)))
    if cursor is not None:
        items.append((CURSOR_PARAM, encode_cursor(cursor)))
    return urlencode(items)
