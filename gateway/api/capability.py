"""The server's CapabilityStatement: data in ``fhir/capability-statement.json``, served with its base URL.

The file lists exactly the interactions and search parameters this API implements (a test compares it
with ``fhir_search.SEARCH_PARAMS`` and the routes). Its ``implementation.url`` holds the placeholder
``{base}``, which is replaced by the URL the server is reached at.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

from fhir_contract.terminology import contract_dir

FILE_NAME = "capability-statement.json"
BASE_PLACEHOLDER = "{base}"


@cache
def _stored() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((contract_dir() / FILE_NAME).read_text(encoding="utf-8"))
    return loaded


def capability_statement(base_url: str) -> dict[str, Any]:
    """The CapabilityStatement with ``implementation.url`` set to ``base_url`` (the FHIR base)."""
    statement = copy.deepcopy(_stored())
    implementation = statement.setdefault("implementation", {})
    if implementation.get("url", BASE_PLACEHOLDER) == BASE_PLACEHOLDER:
        implementation["url"] = base_url
    return statement
