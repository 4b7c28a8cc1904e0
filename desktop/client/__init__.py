"""The engine client: start or connect to the engine, send requests, stream its events.

Pure asyncio and torch-free (only `engine.protocol` of the engine); no Qt, so it is tested
without a display and runs under qasync in the app.
"""

from desktop.client.connection_state import ConnectionState, EngineClientError
from desktop.client.engine_client import EngineClient
from desktop.client.event_hub import EventStream
from desktop.client.settings import ClientSettings
from desktop.client.transport import EngineLog

__all__ = [
    "ClientSettings",
    "ConnectionState",
    "EngineClient",
    "EngineClientError",
    "EngineLog",
    "EventStream",
]
