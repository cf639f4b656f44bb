"""The administrators' pages: the audit log, read and filtered in the browser (``GET /admin/audit``).

A municipality administrator reads the rows about her municipality: what its users did, and whatever
anyone did with the data of its citizens (a GP of another municipality included). A system administrator
reads every municipality's rows. Nurses and GPs get 403 (``deps.AdminUser``). Filters: user, patient,
action, a date range (whole days in the user's time zone), and paging from the newest row back by id
(``gateway.store.audit.audit_page``). Reading the log writes nothing to it: the page shows who looked at
which patient id, never a patient's clinical data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from gateway.api.deps import AdminUser, DbDep
from gateway.api.i18n import current
from gateway.api.i18n import gettext as _
from gateway.api.web import render_page
from gateway.store import access
from gateway.store.audit import AuditFilter, audit_page

router = APIRouter(prefix="/admin", tags=["admin"])

PAGE_SIZE = 50
# Longer filter values than this are no username, patient id or action this server writes.
_MAX_FILTER_CHARS = 200


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """The page's filters as typed: what the form shows again and what its links carry."""

    username: str = ""
    patient: str = ""
    action: str = ""
    since: str = ""
    until: str = ""

    def link(self, **extra: str | int) -> str:
        """The query string of a link that keeps these filters (and adds ``extra``)."""
        given = {name: value for name, value in asdict(self).items() if value}
        return urlencode({**given, **{name: str(value) for name, value in extra.items()}})


def _text(value: str) -> str | None:
    cleaned = value.strip()
    if len(cleaned) > _MAX_FILTER_CHARS or "\x00" in cleaned:
        raise HTTPException(400, _("A filter value is too long or holds characters no name has."))
    return cleaned or None


def _day_start(value: str, *, next_day: bool = False) -> datetime | None:
    """The start of a day typed as YYYY-MM-DD in the user's time zone (or of the day after)."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, _("A date must be written YYYY-MM-DD.")) from None
    if next_day:
        if day == date.max:
            return None
        day += timedelta(days=1)
    return datetime.combine(day, time(), tzinfo=current().time_zone)


@router.get("/audit", response_class=HTMLResponse)
def audit_log(
    request: Request,
    user: AdminUser,
    conn: DbDep,
    username: str = "",
    patient: str = "",
    action: str = "",
    since: str = "",
    until: str = "",
    before: int | None = None,
) -> HTMLResponse:
    """The audit log of the administrator's municipality (a system administrator's: all), filtered."""
    query = AuditQuery(username, patient, action, since, until)
    wanted = AuditFilter(
        username=_text(username),
        patient_id=_text(patient),
        action=_text(action),
        since=_day_start(since),
        until=_day_start(until, next_day=True),
    )
    municipality = None if user.role == access.SYSTEM_ADMIN else user.municipality_id
    found = audit_page(conn, municipality, wanted, before_id=before, size=PAGE_SIZE)
    return render_page(
        request,
        user,
        "audit.html",
        rows=found.rows,
        query=query,
        first_page=query.link(),
        older=None if found.older_than is None else query.link(before=found.older_than),
        paged=before is not None,
        every_municipality=municipality is None,
    )
