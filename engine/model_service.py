"""`model_action` requests: list, import, verify, remove and download models of the store.

Everything runs in threads beside the job worker, so restores go on meanwhile: the quick
actions in asyncio's default executor, each download in a thread of its own (one per model at
a time) that reports `model_progress`, throttled here, and can be stopped by a "cancel".
Failures a user can cause are `EngineError`s, answered as `error` with their hint; offline
mode makes a download fail at once with kind `model_missing`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from engine import protocol as p
from engine.cancel import CancelToken
from engine.errors import BadSettingError, EngineError, error_event
from engine.path_policy import ANYWHERE, PathPolicy
from engine.progress import LatestWins

logger = logging.getLogger(__name__)

PROGRESS_HZ = 10.0
"""Most `model_progress` events per second and download; the latest position wins."""

Send = Callable[[p.Event], None]
"""Delivers an event to the client; thread-safe (the server posts into its loop)."""


class DownloadCancelled(Exception):
    """Raised inside the hub's progress callback to stop a download; partial files stay."""


def model_info(status: Any) -> dict[str, Any]:
    """One `models_reply` entry for a `ModelStatus`."""
    entry = status.entry
    return {
        "name": status.name,
        "title": entry.title if entry else local_title(status.name, Path(status.path)),
        "status": status.status,
        "size_bytes": status.size_on_disk,
        "licence": entry.licence if entry else "",
        "path": str(status.path),
    }


def local_title(name: str, folder: Path) -> str:
    """An imported upscaler says what it is ("name (RealESRGAN Compact, x4 upscaler)")."""
    from engine.weights.upscaler_io import upscaler_folder, upscaler_summary

    return f"{name} ({upscaler_summary(folder)})" if upscaler_folder(folder) else name


def installed_models(store_root: str | None) -> list[dict[str, Any]]:
    from engine.weights.store import ModelStore

    return [model_info(status) for status in ModelStore(store_root).installed()]


class ModelService:
    """Answers `model_action` requests for one store; `send` must be thread-safe."""

    def __init__(self, store_root: str | None, send: Send) -> None:
        self.store_root = store_root
        self.send = send
        self._downloads: dict[str, CancelToken] = {}
        """Running downloads by model name, each with its cancel token."""
        self._lock = threading.Lock()

    def _store(self):
        from engine.weights.store import ModelStore

        return ModelStore(self.store_root)

    async def handle(
        self, request: p.ModelAction, devices: Callable[[], Any], paths: PathPolicy = ANYWHERE
    ) -> None:
        """Answer `request`; `devices` awaits the device facts (only "list" needs them), and
        a path to import must pass `paths`."""
        try:
            _check_request(request)
            if request.action == "import":
                paths.check(request.path or "", "the model to import")
            if request.action == "list":
                models = await asyncio.to_thread(installed_models, self.store_root)
                _, facts = await devices()
                self.send(p.ModelsReply(request_id=request.id, models=models, devices=facts))
            elif request.action == "download":
                await asyncio.to_thread(self._start_download, request)
            elif request.action == "cancel":
                self.send(self._cancel(request))
            else:
                self.send(await asyncio.to_thread(self._run, request))
        except EngineError as error:
            self.send(error_event(request.id, error))

    # ------------------------------------------------------------- quick actions

    def _run(self, request: p.ModelAction) -> p.ModelDone:
        store = self._store()
        done = p.ModelDone(request_id=request.id, action=request.action, name=request.name or "")
        if request.action == "import":
            status = store.import_path(request.name, _existing(request.path), link=request.link)
            done.name, done.model = status.name, model_info(status)
        elif request.action == "verify":
            report = store.verify(request.name)
            done.problems, done.checked = report.problems, report.checked
            done.model = model_info(store.status(request.name))
        elif request.action == "remove":
            if request.name in self._downloads:
                raise BadSettingError(
                    f"{request.name} is being downloaded.",
                    hint="cancel the download first, then remove the model",
                )
            done.freed_bytes = store.remove(request.name)
            done.model = _status_or_none(store, request.name)
        return done

    # ----------------------------------------------------------------- downloads

    def _start_download(self, request: p.ModelAction) -> None:
        """Check what can be checked at once (offline, disk space), then download in a thread."""
        name = request.name
        assert name is not None
        self._store().prepare_download(name)
        stop = CancelToken()
        with self._lock:
            if name in self._downloads:
                raise BadSettingError(
                    f"{name} is already being downloaded.", hint="wait for it, or cancel it"
                )
            self._downloads[name] = stop
        threading.Thread(
            target=self._download, args=(request, stop), name=f"download-{name}", daemon=True
        ).start()

    def _download(self, request: p.ModelAction, stop: CancelToken) -> None:
        name = request.name or ""
        throttle = _DownloadProgress(request.id, name, self.send, stop)
        try:
            try:
                status = self._store().download(name, throttle)
            finally:
                throttle.flush()  # the last position goes before the end, whatever the end
            self.send(
                p.ModelDone(
                    request_id=request.id, action="download", name=name, model=model_info(status)
                )
            )
        except DownloadCancelled:
            self._send_cancelled(request, name)
        except EngineError as error:
            if stop.cancelled:  # the hub library may wrap our exception in its own
                self._send_cancelled(request, name)
            else:
                self.send(error_event(request.id, error))
        except Exception as error:  # a bug: say so, keep serving
            logger.exception("downloading %s failed", name)
            if stop.cancelled:
                self._send_cancelled(request, name)
            else:
                message = f"internal error: {type(error).__name__}: {error}"
                self.send(p.Error(request_id=request.id, message=message, hint="see the log"))
        finally:
            with self._lock:
                self._downloads.pop(name, None)

    def _send_cancelled(self, request: p.ModelAction, name: str) -> None:
        logger.info("download of %s cancelled", name)
        self.send(
            p.ModelDone(
                request_id=request.id,
                action="download",
                name=name,
                model=_status_or_none(self._store(), name),
                cancelled=True,
            )
        )

    def _cancel(self, request: p.ModelAction) -> p.ModelDone:
        with self._lock:
            stop = self._downloads.get(request.name or "")
        if stop is not None:
            stop.cancel("cancel")
        return p.ModelDone(
            request_id=request.id,
            action="cancel",
            name=request.name or "",
            cancelled=stop is not None,
        )


class _DownloadProgress:
    """The store's download progress as `model_progress` events, through `LatestWins` at
    most `PROGRESS_HZ` a second; raises DownloadCancelled once `stop` is set."""

    def __init__(self, request_id: str, name: str, send: Send, stop: CancelToken) -> None:
        self.request_id = request_id
        self.name = name
        self.stop = stop
        self.throttle: LatestWins[p.ModelProgress] = LatestWins(send, PROGRESS_HZ)

    def __call__(self, update: Any) -> None:
        if self.stop.cancelled:
            raise DownloadCancelled(self.name)
        self.throttle.offer(
            p.ModelProgress(
                request_id=self.request_id,
                name=self.name,
                file=update.description,
                done_bytes=update.done,
                total_bytes=update.total,
            )
        )

    def flush(self) -> None:
        self.throttle.flush()


def _check_request(request: p.ModelAction) -> None:
    """The protocol checks names, not value types: refuse what no action could use."""
    if request.action not in get_args(p.ModelActionKind):
        raise BadSettingError(
            f"unknown model action {request.action!r}",
            hint=f"use one of {', '.join(get_args(p.ModelActionKind))}",
        )
    for field_name in ("name", "path"):
        value = getattr(request, field_name)
        if value is not None and not isinstance(value, str):
            raise BadSettingError(f"model_action: {field_name} must be a string or null")
    if not isinstance(request.link, bool):
        raise BadSettingError("model_action: link must be true or false")
    if request.action in ("verify", "remove", "download", "cancel") and not request.name:
        raise BadSettingError(
            f"model_action {request.action} needs a model name",
            hint="list the models to see their names",
        )
    if request.action == "import" and not request.path:
        raise BadSettingError(
            "model_action import needs a path", hint="choose a model file or folder to import"
        )


def _existing(path: str | None) -> Path:
    source = Path(path or "").expanduser()
    if not source.exists():
        raise BadSettingError(
            f"{source} does not exist on the engine's machine.", hint="check the path"
        )
    if not (source.is_file() or source.is_dir()):
        raise BadSettingError(f"{source} is neither a file nor a folder.", hint="check the path")
    return source


def _status_or_none(store: Any, name: str) -> dict[str, Any] | None:
    """The model's entry (a manifest model stays listed as missing), None for a local one."""
    try:
        return model_info(store.status(name))
    except EngineError:
        return None
