"""Helpers for the client tests: short-timeout clients, event collectors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from desktop.client import ClientSettings, ConnectionState, EngineClient
from engine import protocol as p

S = ConnectionState
FAST = {
    "start_timeout_s": 10.0,
    "request_timeout_s": 5.0,
    "interrupt_timeout_s": 0.5,
    "restart_backoff_s": 0.01,
    "shutdown_timeout_s": 2.0,
}


_clients: list[EngineClient] = []


def make_client(**settings) -> tuple[EngineClient, list[ConnectionState]]:
    """A client with short timeouts, and the states it goes through."""
    client = EngineClient(ClientSettings(**{**FAST, **settings}))
    states: list[ConnectionState] = []
    client.on_state_changed(lambda _old, new: states.append(new))
    _clients.append(client)
    return client, states


def run(test: Callable, timeout: float = 20.0) -> None:
    """Run the async `test` with a deadline; close its clients (and engines) whatever happens."""

    async def bounded():
        try:
            await asyncio.wait_for(test(), timeout)
        finally:
            while _clients:
                await _clients.pop().close()

    asyncio.run(bounded())


async def collect(stream, until: Callable[[list[p.Event]], bool], timeout: float = 10.0):
    """Events from `stream` until `until(events)` holds."""
    events: list[p.Event] = []
    async with asyncio.timeout(timeout):
        async for event in stream:
            events.append(event)
            if until(events):
                return events
    raise AssertionError(f"the stream ended first: {events}")


def finished(*job_ids: str) -> Callable[[list[p.Event]], bool]:
    terminal = (p.Result, p.Error, p.Cancelled)

    def check(events: list[p.Event]) -> bool:
        done = {e.job_id for e in events if isinstance(e, terminal)}
        return done >= set(job_ids)

    return check


def of_job(events: list[p.Event], job_id: str) -> list[str]:
    return [e.TYPE for e in events if getattr(e, "job_id", None) == job_id]
