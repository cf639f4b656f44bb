"""The staff's language: gettext for Python code and templates, chosen per request (Danish by default).

``gettext`` / ``ngettext`` translate through the catalogue of the current request's language, held in a
context variable that ``use_language`` sets (the app does it per request). Code that builds wording calls
``from gateway.api.i18n import gettext as _`` and the templates call ``_()`` / ``ngettext()`` (template
globals), so each string is marked where it is written and ``pybabel extract`` finds it.
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

DEFAULT_LANGUAGE = "da"
LANGUAGES: tuple[str, ...] = ("da", "en")

_current: ContextVar[_gettext.NullTranslations] = ContextVar("homewatch_translations")
_NULL = _gettext.NullTranslations()


def translations_for(language: str) -> _gettext.NullTranslations:
    """The catalogue of ``language`` (no catalogue yet: the source text, English)."""
    return _NULL


@contextmanager
def use_language(language: str) -> Iterator[None]:
    """Translate into ``language`` inside the block (a request, a test)."""
    token = _current.set(translations_for(language))
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    """``message`` in the current language."""
    return _current.get(_NULL).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural of a message for ``n``, in the current language."""
    return _current.get(_NULL).ngettext(singular, plural, n)
