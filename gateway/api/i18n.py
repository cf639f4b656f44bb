"""The staff's language and time zone: gettext for Python code and templates, chosen per request.

Each request runs inside ``use_language`` (``gateway.api.language`` sets it from the user's choice), which
puts a ``Localization`` in a context variable: the language's gettext catalogue, its Babel ``Locale``
(CLDR formats for dates, durations and numbers) and the time zone times are shown in (Europe/Copenhagen
unless the settings say otherwise). Outside a request (the CLI, a unit test) the source text is used:
English, in the default zone.

Code marks text where it is written: ``from gateway.api.i18n import gettext as _``; templates call
``_()`` / ``ngettext()`` / ``pgettext()`` (installed by ``app.py``). A table built at import time marks
its entries with ``N_`` and translates them where they are shown. Placeholders are named and filled as in
Flask-Babel: ``_("as of %(when)s", when=...)`` formats only when given values, so ``_("5 %")`` needs no
escaping; ``ngettext`` always formats and supplies ``num``.

Catalogues are ``gateway/locale/<language>/LC_MESSAGES/messages.po`` (``make messages`` extracts and
updates them; ``babel.cfg`` says from where). They are compiled in memory the first time a language is
used (Babel's ``read_po`` then ``write_mo``): the ``.po`` file is the only copy, so no ``.mo`` can be
stale or forgotten by an install step, and the few hundred messages compile in milliseconds.
``create_app`` loads every catalogue at start, so a broken one stops the server rather than a page.
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import tzinfo
from functools import cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DEFAULT_LANGUAGE = "da"
LANGUAGES: tuple[str, ...] = ("da", "en")
# The language the messages are written in (msgids): what a missing translation falls back to.
SOURCE_LANGUAGE = "en"
DEFAULT_TIME_ZONE = "Europe/Copenhagen"

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"


@dataclass(frozen=True, slots=True)
class Localization:
    """What text and times are shown in: a language, its catalogue and CLDR locale, and a time zone."""

    language: str
    translations: _gettext.NullTranslations
    locale: Locale
    time_zone: tzinfo


def catalogue_path(language: str) -> Path:
    """The ``.po`` file of ``language``."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations_for(language: str) -> _gettext.NullTranslations:
    """The catalogue of ``language``, compiled from its ``.po`` file once per process.

    Fuzzy and empty entries are left out (``write_mo``), so they show the English source text.
    """
    if language not in LANGUAGES:
        raise ValueError(f"no catalogue for language {language!r}; homewatch speaks {', '.join(LANGUAGES)}")
    with catalogue_path(language).open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return _gettext.GNUTranslations(compiled)


def load_catalogues() -> None:
    """Compile every language's catalogue now (at start), so a broken ``.po`` fails early."""
    for language in LANGUAGES:
        translations_for(language)


@cache
def _time_zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def localization(language: str, time_zone: str = DEFAULT_TIME_ZONE) -> Localization:
    """The ``Localization`` of ``language`` in ``time_zone`` (an IANA name such as Europe/Copenhagen)."""
    return Localization(language, translations_for(language), Locale.parse(language), _time_zone(time_zone))


_SOURCE = Localization(
    SOURCE_LANGUAGE, _gettext.NullTranslations(), Locale.parse(SOURCE_LANGUAGE), _time_zone(DEFAULT_TIME_ZONE)
)
_current: ContextVar[Localization] = ContextVar("homewatch_localization", default=_SOURCE)


@contextmanager
def use_language(language: str, time_zone: str = DEFAULT_TIME_ZONE) -> Iterator[None]:
    """Translate into ``language`` and show times in ``time_zone`` inside the block (a request, a test)."""
    token = _current.set(localization(language, time_zone))
    try:
        yield
    finally:
        _current.reset(token)


def current() -> Localization:
    """The ``Localization`` in force (the source text in the default zone outside ``use_language``)."""
    return _current.get()


def current_language() -> str:
    """The language code in force ("da", "en"): what ``<html lang>`` says."""
    return _current.get().language


def gettext(message: str, /, **variables: object) -> str:
    """``message`` in the current language; with ``variables``, its ``%(name)s`` placeholders filled."""
    text = _current.get().translations.gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, /, **variables: object) -> str:
    """The singular or plural of a message for ``num``, placeholders filled (``%(num)d`` among them)."""
    text = _current.get().translations.ngettext(singular, plural, num)
    return text % {"num": num, **variables}


def pgettext(context: str, message: str, /, **variables: object) -> str:
    """``message`` in the current language, told apart from the same English word by ``context``."""
    text = _current.get().translations.pgettext(context, message)
    return text % variables if variables else text


def N_(message: str) -> str:  # the name every gettext extractor knows
    """Mark ``message`` for extraction without translating it (tables built at import time)."""
    return message
