"""For the dialog tests: asyncio on Qt's loop, and scripted EngineClient stand-ins."""

from __future__ import annotations

import asyncio

import pytest

from desktop.client.connection_state import EngineClientError
from engine.protocol import Exported, ModelDone, ModelProgress, ModelsReply


@pytest.fixture
def loop(qasync_session_loop):
    """asyncio on Qt's loop for one test (app_fixtures' session loop, marked as this thread's
    running loop only during the test, so the in-process `asyncio.run` of later tests works)."""
    asyncio.set_event_loop(qasync_session_loop)
    asyncio.events._set_running_loop(qasync_session_loop)
    yield qasync_session_loop
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)


def finish(qtbot, task: asyncio.Task):
    """Wait for a dialog's task and return its result (raising what it raised)."""
    qtbot.waitUntil(task.done, timeout=10_000)
    return task.result()


class FakeModelClient:
    """Answers `model_action` from `models` and `failures`; a download runs until
    `release_download` or a "cancel", sending `progress` first."""

    def __init__(self, models: list[dict], devices: list[dict]) -> None:
        self.models = models
        self.devices = devices
        self.calls: list[tuple] = []
        self.failures: dict[str, EngineClientError] = {}
        self.problems: list[str] = []
        self.progress = [
            ModelProgress(name="dreamclear", file="x.pth", done_bytes=50, total_bytes=200)
        ]
        self._download: asyncio.Future[bool] | None = None

    async def model_action(self, action, name=None, *, path=None, link=False, on_progress=None):
        self.calls.append((action, name, path))
        await asyncio.sleep(0)
        if action in self.failures:
            raise self.failures[action]
        if action == "list":
            return ModelsReply(models=[dict(m) for m in self.models], devices=self.devices)
        if action == "download":
            for event in self.progress:
                on_progress(event)
            self._download = asyncio.get_running_loop().create_future()
            cancelled = await self._download
            if not cancelled:
                self._set_status(name, "installed")
            return ModelDone(action="download", name=name, cancelled=cancelled)
        if action == "cancel":
            running = self._download is not None and not self._download.done()
            if running:
                self._download.set_result(True)
            return ModelDone(action="cancel", name=name, cancelled=running)
        if action == "import":
            self.models.append(
                {
                    "name": "tiny",
                    "title": "tiny",
                    "status": "installed",
                    "size_bytes": 10,
                    "licence": "",
                    "path": "/store/local/tiny",
                }
            )
            return ModelDone(action="import", name="tiny")
        if action == "verify":
            return ModelDone(action="verify", name=name, problems=self.problems, checked=["a", "b"])
        if action == "remove":
            self._set_status(name, "missing")
            return ModelDone(action="remove", name=name, freed_bytes=2_000_000)
        raise AssertionError(action)

    def release_download(self) -> None:
        assert self._download is not None
        self._download.set_result(False)

    def _set_status(self, name: str, status: str) -> None:
        for model in self.models:
            if model["name"] == name:
                model["status"] = status


class FakeExportClient:
    """Answers `export`: names in `taken` exist; `failures` maps a source to an error."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self.taken = taken or set()
        self.failures: dict[str, EngineClientError] = {}
        self.calls: list[dict] = []

    async def export(
        self, source, destination, *, dry_run=False, overwrite=False, keep_both=False, **fields
    ) -> Exported:
        options = {"dry_run": dry_run, "overwrite": overwrite, "keep_both": keep_both}
        self.calls.append({"source": str(source), **options, **fields})
        await asyncio.sleep(0)
        if str(source) in self.failures:
            raise self.failures[str(source)]
        stem = fields["name_pattern"].format(stem=fields["stem"], scale=fields["scale"])
        path = f"{destination}/{stem}.{fields['format']}"
        if dry_run:
            return Exported(path=path, exists=path in self.taken)
        if keep_both:
            path = f"{destination}/{stem} (1).{fields['format']}"
        return Exported(path=path, written=True)
