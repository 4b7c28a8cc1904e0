"""`ClientSettings`: how patient the engine client is, and what it does when the engine dies."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ClientSettings:
    """How patient the client is, and what it does when the engine dies."""

    start_timeout_s: float = 120.0
    """How long a new engine may take to answer `hello` (it imports torch first)."""
    request_timeout_s: float = 10.0
    """How long `list_models`, `restore` and `shutdown` wait for their answer."""
    slow_request_timeout_s: float = 300.0
    """How long `export` and a model `verify` (reading every header) wait for their answer;
    a model `import` or `download` waits as long as it takes (or until the engine dies)."""
    interrupt_timeout_s: float = 5.0
    """How long a running job may take to stop after `interrupt` before its engine is killed."""
    requeue_on_crash: bool = False
    """Run the job that was running when the engine died once more instead of failing it."""
    max_restarts: int = 3
    """Restarts in a row before giving up; a finished job or `stable_s` of uptime resets it."""
    restart_backoff_s: float = 0.5
    """Wait before the first restart in a row; doubled for each further one (at most 8 s)."""
    stable_s: float = 60.0
    """An engine that ran this long before dying starts a fresh count of restarts in a row."""
    shutdown_timeout_s: float = 5.0
    """`close()`: wait this long for `bye`, then for the exit, then after terminate."""
    log_lines: int = 2000
    """Lines of the engine's stderr kept for the diagnostic report."""
    client_name: str = "dreamclear-studio"
    """Sent in `hello`, for the engine's log."""
