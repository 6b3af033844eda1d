"""The alerts' errors, under the project's root."""

from __future__ import annotations

from ingest.errors import AiswatchError


class ChannelError(AiswatchError):
    """A delivery failed for now (server down, 5xx, 429): try again later,
    no sooner than ``retry_after_s`` when the channel said so."""

    def __init__(self, message: str, *, channel: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.channel = channel
        self.retry_after_s = retry_after_s


class ChannelRefused(ChannelError):
    """The channel refused the message itself (a 4xx, a rejected recipient):
    trying again would fail the same way, so it is dead-lettered at once."""
