"""The client's connection state machine and the errors it reports, each with a kind and a hint.

States and the moves between them (anything else is a bug, caught by `check_transition`):

    STARTING --hello answered--> READY <--jobs done / jobs accepted--> BUSY
    READY/BUSY --process exit or EOF--> LOST --backoff--> RESTARTING --hello--> READY/BUSY
    RESTARTING --start failed--> LOST (retried with backoff until the cap, then LOST for good)
    any --close()--> STOPPED --spawn()/connect()--> STARTING     (STOPPED is also the first state)
"""

from __future__ import annotations

import enum
from typing import Literal

from engine.protocol import ErrorKind


class ConnectionState(enum.Enum):
    STARTING = "starting"
    """Spawning or connecting, then waiting for `hello_reply`."""
    READY = "ready"
    """Connected and idle: no job accepted and unfinished."""
    BUSY = "busy"
    """Connected with jobs running or queued in the engine."""
    LOST = "lost"
    """The engine is gone. A restart follows unless `EngineClient.error` says why not."""
    RESTARTING = "restarting"
    """Starting a new engine (or reconnecting) after a loss."""
    STOPPED = "stopped"
    """No engine, on purpose: not started yet, or closed."""


CONNECTED = frozenset({ConnectionState.READY, ConnectionState.BUSY})

_ALLOWED: dict[ConnectionState, frozenset[ConnectionState]] = {
    ConnectionState.STARTING: frozenset(
        {ConnectionState.READY, ConnectionState.LOST, ConnectionState.STOPPED}
    ),
    ConnectionState.READY: frozenset(
        {ConnectionState.BUSY, ConnectionState.LOST, ConnectionState.STOPPED}
    ),
    ConnectionState.BUSY: frozenset(
        {ConnectionState.READY, ConnectionState.LOST, ConnectionState.STOPPED}
    ),
    ConnectionState.LOST: frozenset(
        {ConnectionState.RESTARTING, ConnectionState.STARTING, ConnectionState.STOPPED}
    ),
    ConnectionState.RESTARTING: frozenset(
        {
            ConnectionState.READY,
            ConnectionState.BUSY,
            ConnectionState.LOST,
            ConnectionState.STOPPED,
        }
    ),
    ConnectionState.STOPPED: frozenset({ConnectionState.STARTING}),
}


def check_transition(old: ConnectionState, new: ConnectionState) -> None:
    if new not in _ALLOWED[old]:
        raise RuntimeError(f"bad connection state change {old.name} -> {new.name}")


ClientErrorKind = (
    ErrorKind  # the engine's own `error` kinds (e.g. "version", "unauthorized")
    | Literal["start_failed", "connection", "timeout", "crashed", "closed"]  # client-only
)

HINTS: dict[str, str] = {
    "version": (
        "The app and the engine are different versions: install the same DreamClear Studio "
        "version on both sides (or reinstall the app)."
    ),
    "unauthorized": (
        "Use the token the engine printed when it started (or the one given with --token)."
    ),
    "start_failed": (
        "The engine process could not start; open the engine log (Help > Diagnostics) for its "
        "error, and check the installation."
    ),
    "connection": (
        "Check that the engine is running and that host and port are right (for a remote "
        "engine: that the SSH tunnel is up)."
    ),
    "timeout": "The engine did not answer in time; it may be busy loading a model. Try again.",
    "crashed": (
        "The engine keeps stopping; open the engine log (Help > Diagnostics), then restart the "
        "engine from the Engine menu. Lowering the tile size or choosing the CPU may help."
    ),
    "closed": "The engine connection was closed; start a new one.",
    "internal": "Restore the photo again; if it keeps failing, send the engine log with a report.",
}


CRASH_MESSAGE = "the engine stopped unexpectedly"
CRASH_HINT = (
    "The engine was restarted. Restore the photo again; if it stops again, try a smaller tile "
    "size or the CPU, and send the engine log (Help > Diagnostics) with a report."
)
"""What a job that was running when its engine died is failed with."""


class EngineClientError(Exception):
    """What went wrong, sorted into a `kind`, with a `hint` saying what to do next."""

    def __init__(self, kind: ClientErrorKind | ErrorKind, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.hint = hint or HINTS.get(kind, "")

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message
