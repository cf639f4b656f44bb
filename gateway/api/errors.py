"""The web API's errors: one root, structured fields, turned into responses only in ``app.py``.

``LoginRequired`` becomes a redirect to the login page (HTML) and ``FhirError`` an OperationOutcome with
its HTTP status (FHIR API). ``answers_operation_outcome`` says which paths answer every error that way:
the FHIR API and the token endpoint its clients log in at (``POST /login/access-token``); the UI's pages
answer HTML. Nothing here knows about HTTP frameworks.
"""

from __future__ import annotations

from gateway.errors import GatewayFailure

FHIR_PATH = "/fhir"
ACCESS_TOKEN_PATH = "/login/access-token"


def answers_operation_outcome(path: str) -> bool:
    """Whether errors on ``path`` are OperationOutcomes (the FHIR API and its token endpoint)."""
    return path in (FHIR_PATH, ACCESS_TOKEN_PATH) or path.startswith(FHIR_PATH + "/")


class ApiError(GatewayFailure):
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
    (http://hl7.org/fhir/issue-type, e.g. ``invalid``, ``not-found``, ``login``, ``throttled``),
    ``diagnostics`` the text a client developer reads, and ``retry_after`` the seconds to wait before
    trying again, when waiting helps.
    """

    def __init__(self, status: int, code: str, diagnostics: str, retry_after: int | None = None) -> None:
        super().__init__(f"{status} {code}: {diagnostics}")
        self.status = status
        self.code = code
        self.diagnostics = diagnostics
        self.retry_after = retry_after
