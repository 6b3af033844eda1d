"""The project's one exception root and its branches.

Every package of aiswatch raises from here, so a caller can catch
``AiswatchError`` and know it is ours. The module imports nothing of ours.
"""

from __future__ import annotations


class AiswatchError(Exception):
    """Root of every error aiswatch raises on purpose."""


class ConfigError(AiswatchError, ValueError):
    """A setting is missing or wrong; ``setting`` names it."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class SourceError(AiswatchError, OSError):
    """A source could not be read; ``source`` names it."""

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message)
        self.source = source


class StorageError(AiswatchError):
    """The database could not be reached or refused what we asked."""
