"""Errors the engine reports to people, each sorted into a kind with a fix hint.

Every error a user can cause (a bad file, a missing model, an unwritable folder) is raised as
one of these, so the CLI prints one line and the engine process sends one `error` event;
anything else is a bug and is reported with its traceback.
"""

from __future__ import annotations

from engine import protocol as p


class EngineError(Exception):
    """An error with a stable `kind` (for the protocol) and a `hint` saying what to do next."""

    kind = "internal"

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class BadInputError(EngineError):
    """An input image that cannot be read or processed (corrupt, too large, too small...)."""

    kind = "bad_input"


class OutputError(EngineError):
    """The result cannot be written (folder not writable, file exists, disk full)."""

    kind = "output"


class ModelNotInstalledError(EngineError):
    """A model the job needs is not in the store; the hint names the command that gets it."""

    kind = "model_missing"


class CheckpointError(EngineError):
    """A weights file that is corrupt, truncated or of another architecture."""

    kind = "bad_checkpoint"


class BadSettingError(EngineError):
    """An option value that cannot work (unknown sampler, tile size too small...)."""

    kind = "bad_setting"


class OutOfMemory(EngineError):
    """The device ran out of memory even at the smallest tile size."""

    kind = "out_of_memory"


class JobInterrupted(EngineError):
    """The job was interrupted by the user; not a failure."""

    kind = "cancelled"


def error_event(request_id: str | None, error: EngineError) -> p.Error:
    """The `error` event answering request `request_id` with `error`."""
    return p.Error(request_id=request_id, kind=error.kind, message=error.message, hint=error.hint)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (its type name when it has none), for messages."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
