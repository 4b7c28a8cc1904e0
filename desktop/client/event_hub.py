"""`EventHub`: hand each event to every subscriber, as a callback or as an async stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from engine.protocol import Event

log = logging.getLogger(__name__)

EventCallback = Callable[[Event], None]

_END = object()


class EventStream:
    """The events from now on, until the hub ends: `async for event in stream`.

    Subscribed when created (not when first iterated), so nothing is missed in between.
    """

    def __init__(self, streams: list[asyncio.Queue[object]]) -> None:
        self._streams = streams
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        streams.append(self._queue)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        item = await self._queue.get()
        if item is _END:
            self.close()
            raise StopAsyncIteration
        assert isinstance(item, Event)
        return item

    def close(self) -> None:
        """Stop receiving (a stream nobody reads would keep every event)."""
        with contextlib.suppress(ValueError):
            self._streams.remove(self._queue)


class EventHub:
    def __init__(self) -> None:
        self._streams: list[asyncio.Queue[object]] = []
        self._callbacks: list[EventCallback] = []

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call `callback(event)` for every event; returns the unsubscribe function."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    def stream(self) -> EventStream:
        """An async iterator over the events from now on; it ends with `end()`."""
        return EventStream(self._streams)

    def dispatch(self, event: Event) -> None:
        for queue in self._streams:
            queue.put_nowait(event)
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception:
                log.exception("an event callback failed on %s", event.TYPE)

    def end(self) -> None:
        """Every stream ends (after the events it holds)."""
        for queue in self._streams:
            queue.put_nowait(_END)
