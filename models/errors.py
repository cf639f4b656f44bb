"""The root of every error the models package raises on purpose: :class:`ModelsError`.

Each module keeps its own error with the fields that say what went wrong (``news2.News2Error``,
``baselines.SeriesError``, ``admission_risk.ModelError``, ``cohort.synthetic.CohortError``,
``cohort_reader.CohortReadError``); all derive from this one, so a caller (the CLI, the gateway's
scorer) can catch any model failure in one clause. The root is a ValueError, as each of them was before
it existed, so no ``except ValueError`` changes meaning. Translating outside exceptions stays with the
module that calls outside.
"""

from __future__ import annotations


class ModelsError(ValueError):
    """Input or a model file the models cannot use; ``reason`` is the sentence for a person."""

    reason: str
