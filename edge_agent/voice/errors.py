"""The voice package's one root error."""

from __future__ import annotations


class VoiceError(Exception):
    """Something of the hub's voice failed; ``reason`` says what.

    Raised only by the functions that tests and tools call directly (:func:`~edge_agent.voice.render_wav`,
    :func:`~edge_agent.voice.prompt`); a :class:`~edge_agent.voice.Speaker` never raises it into the
    hub: it logs and carries on.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
