"""The FHIR contract between hub and server, as code: loads ``fhir/`` (data) and applies it.

``fhir/`` is data only and never importable as ``fhir`` (that name belongs to ``fhir.resources``); this
package is what the hub (``observation``: build) and the server (``validate``: check) share, with the
vocabulary both speak (``readings``: Reading, Quantity, Absent), ``terminology`` (the reading types),
``units`` (the one conversion table), ``limits``, ``status``, ``device`` and ``examples``. It imports
neither the hub nor the server (``tests/test_package_boundaries.py``).
"""
