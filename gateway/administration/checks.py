"""The administration layer's shared checks of what a caller gives: ids, who acts, and the error line.

Each raises :class:`~gateway.administration.errors.AdministrationError` with one line in the reader's
language (``gettext``), so the command line and the pages say the same.
"""

from __future__ import annotations

from fhir_contract.limits import is_fhir_id
from gateway.administration.errors import AdministrationError
from gateway.api.i18n import gettext as _

#: The longest name of whoever acts (the audit row's username).
NAME_CHARS = 200


def fail(message: str) -> AdministrationError:
    """The error of a message already in the reader's language, on one line."""
    return AdministrationError(" ".join(message.split()))


def checked_id(value: str) -> str:
    """``value`` when it is a FHIR id (what every id of a patient, hub or device is)."""
    if not is_fhir_id(value):
        raise fail(_("%(value)r is not a valid id (1 to 64 letters, digits, '-' or '.').", value=value))
    return value


def checked_by(value: str) -> str:
    """Who acts, for the audit row: 1 to ``NAME_CHARS`` printable characters, spaces collapsed."""
    by = " ".join(value.split())
    if not by or len(by) > NAME_CHARS or not by.isprintable():
        raise fail(_("Who acts must be named in 1 to %(chars)d printable characters.", chars=NAME_CHARS))
    return by
