"""The set-up's one error: what went wrong and what to do next (as engine.errors does)."""

from __future__ import annotations


class SetupError(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message}\n  {self.hint}" if self.hint else message
