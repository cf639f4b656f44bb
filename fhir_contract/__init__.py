"""The FHIR contract between hub and server, as code: loads ``fhir/`` (data) and applies it.

``fhir/`` is data only and never importable as ``fhir`` (that name belongs to ``fhir.resources``); this
package is what the hub (``observation``: build) and the server (``validate``: check) share.
"""
