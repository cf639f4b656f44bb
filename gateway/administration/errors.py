"""The administration layer's one error: a line for the administrator, no traceback."""

from __future__ import annotations

from gateway.errors import GatewayFailure


class AdministrationError(ValueError, GatewayFailure):
    """Bad input or a refused change, said in one line (the CLI prints it and exits 2; a page shows it)."""
