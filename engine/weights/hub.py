"""Downloads from the Hugging Face hub into a model's store folder.

huggingface_hub resumes interrupted downloads (partial files are kept and continued on the next
call) and honours its offline mode; progress goes to a callback instead of a bar; hub and
network failures become `EngineError`s whose hint names the command to run next. Without a
network the download fails at once (`check_hub_reachable`): huggingface_hub itself would retry
for half a minute, logging every try.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import EngineError, ModelNotInstalledError, OutputError, first_line
from engine.weights.manifest import ModelEntry


@dataclass(frozen=True)
class DownloadProgress:
    """One progress update of a download; `total` is None while the size is unknown."""

    name: str
    description: str
    done: int
    total: int | None


ProgressCallback = Callable[[DownloadProgress], None]
HUB_CHECK_TIMEOUT_S = 5.0
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def download_model(
    entry: ModelEntry,
    folder: Path,
    progress: ProgressCallback | None,
    *,
    download_command: str,
    import_command: str,
) -> None:
    """Fetch every file and folder of `entry` from its hub repo into `folder`.

    The commands are the exact `dreamclear models ...` lines the error hints name.
    """
    assert entry.repo is not None
    import huggingface_hub

    again = f"run `{download_command}` again (it resumes)"
    reason = check_hub_reachable()
    if reason is not None:
        raise ModelNotInstalledError(
            f"Cannot download {entry.name}: the model hub cannot be reached ({reason}).",
            hint=f"check the network connection, then {again}; "
            f"or import a local copy with `{import_command}`",
        )
    folder.mkdir(parents=True, exist_ok=True)
    tqdm_class = _progress_tqdm(entry.name, progress) if progress else None
    with (
        _hub_errors(entry.name, entry.repo, folder, download_command, import_command),
        _hub_warnings_once(),
    ):
        for file in entry.files:
            huggingface_hub.hf_hub_download(
                repo_id=entry.repo,
                filename=file.path,
                local_dir=folder,
                tqdm_class=tqdm_class,
            )
        for sub in entry.folders:
            huggingface_hub.snapshot_download(
                repo_id=entry.repo,
                allow_patterns=list(sub.download),
                local_dir=folder,
                tqdm_class=tqdm_class,
            )


def check_hub_reachable(timeout: float = HUB_CHECK_TIMEOUT_S) -> str | None:
    """None when a connection to the hub opens within `timeout`, else why not, in words.

    Behind a proxy (HTTPS_PROXY, ALL_PROXY) only the proxy can tell: the check is skipped."""
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return None
    from huggingface_hub import constants

    url = urllib.parse.urlsplit(constants.ENDPOINT)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror:
        return f"{host} cannot be resolved: no network or no DNS"
    except TimeoutError:
        return f"{host} did not answer within {timeout:g} s"
    except OSError as error:
        return f"{host}: {error.strerror or error}"


@contextmanager
def _hub_warnings_once() -> Iterator[None]:
    """huggingface_hub prints its warnings through its own handler; passing them on to ours
    too would print each one twice."""
    hub_logger = logging.getLogger("huggingface_hub")
    propagate = hub_logger.propagate
    hub_logger.propagate = False
    try:
        yield
    finally:
        hub_logger.propagate = propagate


def offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _progress_tqdm(name: str, progress: ProgressCallback):
    """A tqdm class that reports to `progress` instead of drawing a bar."""
    from tqdm.auto import tqdm

    class CallbackTqdm(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)  # huggingface_hub's own tqdm takes a logger name
            kwargs["disable"] = False
            kwargs["file"] = open(os.devnull, "w")  # noqa: SIM115 - closed in close()
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            progress(DownloadProgress(name, str(self.desc or ""), int(self.n), self.total))
            return shown

        def close(self) -> None:
            file = self.fp
            super().close()
            file.close()

    return CallbackTqdm


@contextmanager
def _hub_errors(name: str, repo: str, folder: Path, download: str, import_: str) -> Iterator[None]:
    """Hub and network failures as EngineErrors: a hint, never a traceback."""
    from huggingface_hub import errors

    again = f"run `{download}` again (it resumes)"
    local_copy = f"import a local copy with `{import_}`"
    try:
        yield
    except EngineError:
        raise
    except errors.GatedRepoError:
        raise ModelNotInstalledError(
            f"{repo} is gated: the hub wants you to accept its licence first.",
            hint=f"accept it on https://huggingface.co/{repo}, log in with `hf auth login`, then {again}",
        ) from None
    except errors.RepositoryNotFoundError:
        raise ModelNotInstalledError(
            f"The hub repository {repo} was not found (moved, private, or a typo in the manifest).",
            hint=local_copy,
        ) from None
    except errors.LocalEntryNotFoundError as exc:
        # The hub could not be reached and the file is not on disk yet.
        raise _network_error(name, exc, again) from None
    except errors.EntryNotFoundError as exc:
        raise ModelNotInstalledError(
            f"{repo} no longer has a file the manifest names: {first_line(exc)}",
            hint=local_copy,
        ) from None
    except errors.OfflineModeIsEnabled:
        raise ModelNotInstalledError(
            f"Cannot download {name}: offline mode is on (HF_HUB_OFFLINE).",
            hint=f"unset HF_HUB_OFFLINE, then {again}",
        ) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise OutputError(
                f"The disk filled up while downloading {name}.",
                hint=f"free some space, then {again}",
            ) from None
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise OutputError(
                f"Cannot write to the store {folder.parent}: {exc.strerror}.",
                hint="choose another store with --store DIR",
            ) from None
        raise _network_error(name, exc, again) from None
    except Exception as exc:
        # httpx / requests transport errors differ across huggingface_hub versions.
        if _is_network_error(exc):
            raise _network_error(name, exc, again) from None
        raise


def _is_network_error(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    modules = {cls.__module__.split(".")[0] for cls in type(exc).__mro__}
    return bool(
        names & {"HTTPError", "TransportError", "ConnectionError", "TimeoutException"}
        or modules & {"httpx", "httpx2", "requests", "urllib3"}
    )


def _network_error(name: str, exc: BaseException, again: str) -> ModelNotInstalledError:
    return ModelNotInstalledError(
        f"Downloading {name} failed: {first_line(exc)}",
        hint=f"check the network connection, then {again}",
    )
