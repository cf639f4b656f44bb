"""What ``/openapi.json`` says about the FHIR API: parameters, bearer security, request and answers.

The FHIR routes read their query strings by hand (``fhir_search.parse_search``: FHIR repeats parameters
and joins alternatives with commas, which FastAPI's typed parameters cannot express), so FastAPI alone
would describe them as taking nothing. This module describes them truthfully for clients and for the
schema-driven fuzzer (``tests/gateway/api/test_api_schemathesis.py``): the search parameters come from
the one table in ``fhir_search``, the answers are FHIR JSON (a Bundle, a resource, or an
OperationOutcome for every error). It describes and never validates: the routes' behaviour is theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Path
from fastapi.security import HTTPBearer

from gateway.api.fhir_model import FHIR_JSON
from gateway.api.fhir_search import (
    COUNT_PARAM,
    CURSOR_PARAM,
    SEARCH_PARAMS,
    SORT_KEYS,
    SORT_PARAM,
    SearchParam,
)

Schema = dict[str, Any]

# Declares the bearer scheme in /openapi.json; it never refuses a request (deps.py decides who may pass).
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A person's token (POST /login/access-token) to read; a hub's (homewatch gateway token) "
    "to POST /fhir.",
)

_ID = r"[A-Za-z0-9\-.]{1,64}"
_DATE = (
    r"(eq|gt|ge|lt|le)?[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?"
)


def _alternatives(one: str) -> str:
    """A pattern for one value or several joined by commas (FHIR's OR)."""
    return f"^{one}(,{one})*$"


# The value of one occurrence of a search parameter, per FHIR search parameter type.
_VALUE_SCHEMAS: Mapping[str, Schema] = {
    "reference": {"type": "string", "pattern": _alternatives(f"(Patient/)?{_ID}")},
    "id": {"type": "string", "pattern": _alternatives(_ID)},
    "token": {"type": "string", "minLength": 1},
    "date": {"type": "string", "pattern": _alternatives(_DATE)},
}


def resource(resource_type: str, **properties: Schema) -> Schema:
    """A FHIR resource of ``resource_type``: what every answer of that type is sure to hold."""
    required = ["resourceType", *properties]
    return {
        "type": "object",
        "required": required,
        "properties": {"resourceType": {"type": "string", "const": resource_type}, **properties},
    }


_STRING: Schema = {"type": "string"}
OPERATION_OUTCOME = resource(
    "OperationOutcome",
    issue={
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "required": ["severity", "code"],
            "properties": {
                "severity": {"enum": ["fatal", "error", "warning", "information"]},
                "code": _STRING,
                "diagnostics": _STRING,
            },
        },
    },
)
_LINK: Schema = {
    "type": "object",
    "required": ["relation", "url"],
    "properties": {"relation": _STRING, "url": _STRING},
}
_SEARCH_ENTRY: Schema = {
    "type": "object",
    "required": ["fullUrl", "resource"],
    "properties": {
        "fullUrl": _STRING,
        "resource": {"type": "object", "required": ["resourceType", "id"]},
        "search": {"type": "object"},
    },
}
SEARCHSET = resource(
    "Bundle",
    type={"type": "string", "const": "searchset"},
    total={"type": "integer", "minimum": 0},
    link={"type": "array", "minItems": 1, "items": _LINK},
)
SEARCHSET["properties"]["entry"] = {"type": "array", "minItems": 1, "items": _SEARCH_ENTRY}
BATCH_RESPONSE = resource("Bundle", type={"type": "string", "const": "batch-response"})
BATCH_RESPONSE["properties"]["entry"] = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["response"],
        "properties": {
            "response": {
                "type": "object",
                "required": ["status"],
                "properties": {"status": _STRING, "location": _STRING, "outcome": OPERATION_OUTCOME},
            }
        },
    },
}
# What a hub posts: a batch Bundle of Observations (each entry is checked by the FHIR contract).
BATCH_REQUEST = resource("Bundle", type={"type": "string", "const": "batch"})
BATCH_REQUEST["properties"]["entry"] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"resource": {"type": "object"}, "request": {"type": "object"}},
    },
}

# Why each error status is answered, for the descriptions of the responses.
_ERRORS: Mapping[int, str] = {
    400: "The request is malformed: an unknown or invalid parameter, id or Bundle.",
    401: "No valid bearer token.",
    403: "The token's holder may not do this (a hub reads nothing, a person posts nothing).",
    404: "Not known in the token's municipality.",
    413: "The body is larger than the limit.",
    415: "The body is not FHIR JSON.",
}


def _fhir_json(schema: Schema) -> dict[str, Any]:
    return {"content": {FHIR_JSON: {"schema": schema}}}


def responses(ok: Schema, description: str, *errors: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a FHIR route: 200 with ``ok``, and each of ``errors`` an OperationOutcome."""
    declared: dict[int | str, dict[str, Any]] = {200: {"description": description, **_fhir_json(ok)}}
    for status in errors:
        declared[status] = {"description": _ERRORS[status], **_fhir_json(OPERATION_OUTCOME)}
    return declared


def _value_kind(param: SearchParam) -> str:
    """Which value schema a parameter takes: its FHIR type, but ``_id`` is a token that must be an id."""
    return "id" if param.name == "_id" else param.type


def search_parameters(resource_type: str) -> list[dict[str, Any]]:
    """The OpenAPI query parameters of a search of ``resource_type``, from ``fhir_search``'s tables."""
    declared: list[dict[str, Any]] = [
        {
            "name": param.name,
            "in": "query",
            "description": f"{param.documentation} Repeat it for AND; commas inside a value mean OR.",
            "schema": {"type": "array", "items": _VALUE_SCHEMAS[_value_kind(param)]},
            "style": "form",
            "explode": True,
        }
        for param in SEARCH_PARAMS[resource_type].values()
    ]
    declared.append(
        {
            "name": COUNT_PARAM,
            "in": "query",
            "description": "Entries per page; more than the server's maximum is cut to it.",
            "schema": {"type": "integer", "minimum": 1},
        }
    )
    if SORT_KEYS[resource_type]:
        keys = [spelled for key in SORT_KEYS[resource_type] for spelled in (key, f"-{key}")]
        declared.append(
            {
                "name": SORT_PARAM,
                "in": "query",
                "description": "The order: oldest first, or newest first with '-' (the default).",
                "schema": {"type": "string", "enum": keys},
            }
        )
    declared.append(
        {
            "name": CURSOR_PARAM,
            "in": "query",
            "description": "Where a page starts: copied, never written, from a 'next' link.",
            "schema": {"type": "string"},
        }
    )
    return declared


def fhir_id(description: str) -> Any:
    """A path parameter that names a resource: described as a FHIR id, never validated as one here (the
    route decides what an id it cannot hold means)."""
    return Path(description=description, json_schema_extra={"pattern": f"^{_ID}$"})


def search(resource_type: str) -> dict[str, Any]:
    """``openapi_extra`` of a search route: its query parameters.

    ``Prefer: handling=strict`` is said in the routes' descriptions, not declared as a header parameter:
    the server accepts any Prefer header (it acts on one preference), so no value of it is invalid, and a
    declared one would have the fuzzer expect refusals.
    """
    return {"parameters": search_parameters(resource_type)}


def batch_request() -> dict[str, Any]:
    """``openapi_extra`` of ``POST /fhir``: the body a hub posts (read by ``deps.get_payload``)."""
    return {"requestBody": {"required": True, **_fhir_json(BATCH_REQUEST)}}
