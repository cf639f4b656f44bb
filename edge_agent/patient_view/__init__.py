"""The patient view: web pages the hub serves on the home network, for the residents themselves.

Behind the household's PIN, in large type and high contrast, Danish or English, without JavaScript (a
cheap tablet or a TV browser): today's plan and what arrived, the last 30 days as plots, the nurse's
messages, the daily symptom check one question a screen, "contact my nurse", and the readings of a
shared device that nobody has claimed yet. Each resident sees their own data only.

- :mod:`.app`: the Starlette application and :class:`~.app.HubPort`, what it needs of the hub;
- :mod:`.security`: the PIN with its lockout and the signed session cookie;
- :mod:`.history`: the residents' recent readings in SQLite beside the outbox (the outbox forgets);
- :mod:`.today`, :mod:`.charts`, :mod:`.texts`: what the pages show, pure;
- :mod:`.server`: uvicorn inside the hub's event loop.

Left to others: when it runs (``edge_agent.service.HubService``, only with ``[patient_view] enabled``),
delivery of what the patient sends (the outbox and publisher), and who the readings of a shared device
belong to (``edge_agent.household``, ``edge_agent.unattributed``).
"""

from edge_agent.patient_view.app import HubPort, HubUnavailable, create_app
from edge_agent.patient_view.history import LocalHistory
from edge_agent.patient_view.server import PatientViewServer

__all__ = ["HubPort", "HubUnavailable", "LocalHistory", "PatientViewServer", "create_app"]
