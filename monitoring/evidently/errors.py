"""Typed, coded errors (the same codes as tasks/src/errors.ts where they overlap)."""

from __future__ import annotations


class MonitorError(Exception):
    """An error with a stable code; the message names the setting or field to change."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.args[0]}"
