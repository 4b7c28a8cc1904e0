"""A download's progress and cancel in the ModelService's thread, with a stand-in store
(the tests never reach the hub)."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from types import SimpleNamespace

from engine import protocol as p
from engine.model_service import ModelService
from engine.weights.hub import DownloadProgress


class EndlessStore:
    """Downloads forever, 1 MB a step, until the progress callback raises."""

    started = threading.Event()
    calls = 0

    def prepare_download(self, name: str) -> None:
        pass

    def download(self, name: str, progress) -> None:
        done = 0
        while True:
            done += 1_000_000
            EndlessStore.calls += 1
            progress(DownloadProgress(name, "weights.pth", done, 10**12))
            self.started.set()
            time.sleep(0.001)

    def status(self, name: str):
        return SimpleNamespace(
            name=name, entry=None, status="partial", size_on_disk=5, path="/store/" + name
        )


def test_download_sends_throttled_progress_and_stops_on_cancel():
    events: queue.Queue[p.Event] = queue.Queue()
    service = ModelService(None, events.put)
    service._store = EndlessStore  # type: ignore[method-assign]

    async def no_devices():
        return "cpu", []

    async def run() -> None:
        await service.handle(p.ModelAction(id="d", action="download", name="x"), no_devices)
        await asyncio.to_thread(EndlessStore.started.wait, 10)
        await asyncio.sleep(0.25)
        await service.handle(p.ModelAction(id="c", action="cancel", name="x"), no_devices)

    asyncio.run(run())
    seen = [events.get(timeout=10)]
    while not (isinstance(seen[-1], p.ModelDone) and seen[-1].action == "download"):
        seen.append(events.get(timeout=10))
    progress = [e for e in seen if isinstance(e, p.ModelProgress)]
    assert 1 <= len(progress) <= EndlessStore.calls / 10  # about 10 a second, not per chunk
    assert progress[-1].total_bytes == 10**12 and progress[-1].file == "weights.pth"
    cancel = next(e for e in seen if isinstance(e, p.ModelDone) and e.action == "cancel")
    assert cancel.cancelled and cancel.request_id == "c"
    assert (
        seen[-1].cancelled and seen[-1].request_id == "d" and seen[-1].model["status"] == "partial"
    )
    assert "x" not in service._downloads
