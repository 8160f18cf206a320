"""Errors of the loader, coded like the TypeScript side's DriftwoodError (tasks/src/errors.ts)."""

from __future__ import annotations

from typing import Literal

ErrorCode = Literal["MODEL_INVALID", "SCHEMA_MISMATCH"]


class DriftwoodModelError(Exception):
    """A model folder this package cannot score (`MODEL_INVALID`), or input it cannot take
    (`SCHEMA_MISMATCH`); the message names the file or column and what is wrong with it."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code: ErrorCode = code
