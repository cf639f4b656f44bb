"""The web API's errors: one root, structured fields, turned into responses only in ``app.py``.

``LoginRequired`` becomes a redirect to the login page (HTML) and ``FhirError`` an OperationOutcome with
its HTTP status (FHIR API). Nothing here knows about HTTP frameworks.
"""

from __future__ import annotations


class ApiError(Exception):
    """Root of every error the web API raises on purpose."""


class LoginRequired(ApiError):
    """An HTML request without a valid session: the user must log in first.

    ``next_path`` is the local path to return to after logging in.
    """

    def __init__(self, next_path: str) -> None:
        super().__init__(f"login required for {next_path}")
        self.next_path = next_path


class FhirError(ApiError):
    """A FHIR API failure, answered with an OperationOutcome.

    ``status`` is the HTTP status, ``code`` the OperationOutcome issue type
    (http://hl7.org/fhir/issue-type, e.g. ``invalid``, ``not-found``, ``login``) and ``diagnostics`` the
    text a client developer reads.
    """

    def __init__(self, status: int, code: str, diagnostics: str) -> None:
        super().__init__(f"{status} {code}: {diagnostics}")
        self.status = status
        self.code = code
        self.diagnostics = diagnostics
