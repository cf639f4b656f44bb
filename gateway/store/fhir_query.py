"""A FHIR search as the store runs it: plain values for criteria, order and page position.

``gateway.api.fhir_search`` parses a query string into a ``Search`` (and formats one back into links);
``gateway.store.fhir_search`` turns a ``Search`` into SQL. Neither parsing nor SQL lives here, only the
values both sides agree on, so the store never imports the web layer.

Conventions: criteria are ANDed; a criterion's alternatives are ORed (FHIR's comma). A ``Cursor`` is the
last row of the previous page: its time and key for time-ordered types (Observation, RiskAssessment),
its key alone (``at`` None) for types ordered by id (Patient).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Reference:
    """A reference search value: the id of the referenced Patient."""

    id: str


@dataclass(frozen=True, slots=True)
class Token:
    """A token search value: ``system|code``, or ``code`` in any system (``|code`` is read the same)."""

    system: str | None
    code: str


@dataclass(frozen=True, slots=True)
class Period:
    """A date search value as a half-open UTC range ``[lower, upper)``; None is unbounded."""

    lower: datetime | None
    upper: datetime | None


@dataclass(frozen=True, slots=True)
class ResourceId:
    """An ``_id`` search value: the resource's own id."""

    id: str


SearchValue = Reference | Token | Period | ResourceId


@dataclass(frozen=True, slots=True)
class Criterion:
    """One occurrence of a parameter: it matches when any of its alternatives matches."""

    name: str
    alternatives: tuple[SearchValue, ...]


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: after the row with this time (None: ordered by key alone) and key."""

    at: datetime | None
    key: str


@dataclass(frozen=True, slots=True)
class Sort:
    """A ``_sort`` as given: one sort key of the resource type, ascending unless prefixed with '-'."""

    key: str
    descending: bool

    def __str__(self) -> str:
        return f"-{self.key}" if self.descending else self.key


@dataclass(frozen=True, slots=True)
class Search:
    """A parsed search: criteria (AND), order, page size and position, and the criteria as given for links.

    ``sort`` None is the type's default order: newest first for time-ordered types (what ``_sort=-date``
    asks for explicitly), by id for Patient.
    """

    resource_type: str
    criteria: tuple[Criterion, ...]
    count: int
    cursor: Cursor | None
    given: tuple[tuple[str, str], ...]
    sort: Sort | None = None

    @property
    def descending(self) -> bool:
        """Whether time-ordered rows come newest first."""
        return self.sort is None or self.sort.descending
