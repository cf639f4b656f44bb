"""The gateway's errors: the root of them all (``GatewayFailure``) and the error for starting up
(``GatewayError``: what ``homewatch gateway serve`` and the demo print as one line).

Every error a gateway module raises on purpose derives from ``GatewayFailure``: the storage layer's
``store.errors.StoreError``, the web API's ``api.errors.ApiError``, the embedded broker's
``broker.BrokerError``, ingest's ``ingest.batch_store`` signals and ``GatewayError``. Each keeps the
base callers caught before the root existed (RuntimeError, Exception), so no ``except`` changes meaning.
"""

from __future__ import annotations


class GatewayFailure(Exception):
    """Root of every error the gateway raises on purpose; catch it to catch any of them."""


class GatewayError(RuntimeError, GatewayFailure):
    """The gateway could not start (port taken, database or broker unreachable, a bad URL, workers that
    never subscribed); the message says what to do."""
