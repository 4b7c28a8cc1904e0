"""`GenirWizard`: the dataset-generation wizard's state, one GenIR run folder at a time.

The run folder is the truth: what the stages made is read from its files (`genir_run`), again
whenever a stage reports progress (throttled) or ends, and when a run is reopened, which then
opens at the first stage whose results are not all there. Each stage is one engine job
(`EngineClient.submit_job` with the stage's request); its progress, ETA, result, error and
cancellation are kept in a `StageRun` per stage. Pause is `interrupt`; resume is the same
request sent again (the engine's journal goes on where it stopped), also after the app was
closed or the engine crashed: a crash fails the running stage with a message saying so, and
the wizard offers to resume it.

Settings the wizard edits go into genir.toml in place (`toml_edit`, see there why). No widget
code here: the pages in desktop/ui/genir_wizard bind to this object's signals.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PySide6.QtCore import QObject, QTimer, Signal

from desktop.client import ConnectionState, EngineClient, EngineClientError
from desktop.state import genir_run, toml_edit
from desktop.state.atomic_file import write_atomically
from desktop.state.genir_run import RunState
from engine import protocol as p

log = logging.getLogger(__name__)

PAGES = ("sources", "base", "finetune", "prompts", "generate", "filter", "export")
"""The wizard's pages in order."""
STAGE_PAGE = {
    "pairs": "base",
    "finetune": "finetune",
    "prompts": "prompts",
    "generate": "generate",
    "filter": "filter",
    "export": "export",
    "train": "export",
}
"""The page that runs each job (the pairs are made on the base model page, where their
strength is chosen; training the starter is the export page's last step)."""
REQUESTS: dict[str, type[p.Request]] = {
    "pairs": p.GenirPairs,
    "finetune": p.GenirFinetune,
    "prompts": p.GenirPrompts,
    "generate": p.GenirGenerate,
    "filter": p.GenirFilter,
    "export": p.GenirExport,
}
TRAIN_CONFIG = Path("export") / "train-starter.toml"
"""The starter config the export stage writes for `train`, relative to the run folder."""
RESCAN_S = 0.25
"""Re-read the run folder at most this often while a stage reports progress."""
CRASHED = "The engine stopped while running this stage."
CRASH_HINT = "What was finished is kept in the run folder. Press Resume to go on from there."
_LOSS = re.compile(r"loss[ =:]*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)")

RunStatus = Literal["idle", "starting", "running", "done", "failed", "cancelled"]


@dataclass
class StageRun:
    """One stage's job as the wizard sees it (kept after it ended, until it is run again)."""

    stage: str
    status: RunStatus = "idle"
    step: int = 0
    steps: int = 0
    eta_s: float | None = None
    label: str = ""
    error: str = ""
    hint: str = ""
    output: str = ""
    engine_job: str | None = None
    """The engine's id for the job, from its `accepted`."""
    request: p.Request | None = None
    """The request sent (its id is set as it goes)."""
    started: float = 0.0
    losses: list[float] = field(default_factory=list)
    """Training losses seen in the progress labels ("... loss 0.123"), oldest first."""

    @property
    def active(self) -> bool:
        return self.status in ("starting", "running")

    @property
    def resumable(self) -> bool:
        """Sending it again goes on where it stopped (the journal keeps what was done)."""
        return self.status in ("failed", "cancelled")

    def estimated_eta(self, now: float) -> float | None:
        """The engine's ETA, else one from the pace so far."""
        if self.eta_s is not None:
            return self.eta_s
        if self.step <= 0 or self.steps <= self.step or not self.started:
            return None
        return (now - self.started) / self.step * (self.steps - self.step)


InitRun = Callable[[Path, Path, Path], Coroutine[Any, Any, None]]
"""Creates a run folder: (run, images, base_model)."""


async def init_with_cli(run: Path, images: Path, base_model: Path) -> None:
    """`dreamclear genir init`: the engine's one writer of the commented config (a child
    process: the desktop does not import the engine's GenIR code)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dreamclear.cli",
        "genir",
        "init",
        str(run),
        "--images",
        str(images),
        "--base",
        str(base_model),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        message = (err or out).decode(errors="replace").strip() or "genir init failed"
        raise EngineClientError("bad_setting", message.splitlines()[-1], message)


class GenirWizard(QObject):
    """The state of one wizard window. See the module doc."""

    runChanged = Signal()
    """The run folder was read again (`state`)."""
    stageChanged = Signal(str)
    """A stage's job changed (progress, end, error); its name."""
    imagesAppeared = Signal(list)
    """New generated images (paths), in key order, as the generate stage writes them."""
    overridesChanged = Signal()
    promptOverridesChanged = Signal()

    def __init__(
        self, client: EngineClient, init_run: InitRun = init_with_cli, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.client = client
        self.init_run = init_run
        self.run: Path | None = None
        self.state: RunState | None = None
        self.runs: dict[str, StageRun] = {}
        self.seen_images: set[str] = set()
        self.usable_sources: int | None = None
        self.train_config: Path | None = None
        """Another trainer config chosen for training on the export (None: the starter's)."""
        self.paces: dict[str, float] = {}
        """Seconds per step each stage took when last run (this session): time estimates."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._rescan = QTimer(self, singleShot=True, interval=int(RESCAN_S * 1000))
        self._rescan.timeout.connect(self.refresh)
        self._unsubscribe = [
            client.subscribe(self._on_event),
            client.on_state_changed(self._on_connection),
        ]

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    # --- the run folder ---------------------------------------------------------------------

    def open_run(self, run: Path | str) -> str:
        """Read an existing run; the page to open (that of the first stage not finished)."""
        self.run = Path(run)
        self.runs = {}
        self.seen_images = set()
        self.usable_sources = None
        self.refresh()
        return self.page_reached()

    async def create_run(self, run: Path, images: Path, base_model: Path) -> str:
        """Make a new run folder (raises EngineClientError with init's message) and open it."""
        await self.init_run(Path(run), Path(images), Path(base_model))
        return self.open_run(run)

    def refresh(self) -> None:
        if self.run is None:
            return
        self.state = genir_run.read_run(self.run, self.usable_sources)
        self._notice_images()
        self.runChanged.emit()

    def set_usable_sources(self, count: int) -> None:
        """The sources page counted the usable images: the pairs are complete at that many."""
        self.usable_sources = count
        self.refresh()

    def page_reached(self) -> str:
        state = self.state
        if state is None or state.config_error:
            return "sources"
        stage = state.next_stage
        if stage is None:
            return "export"
        if stage == "pairs" and state.pairs == 0:
            return "sources"
        return STAGE_PAGE[stage]

    @property
    def config_path(self) -> Path:
        assert self.run is not None
        return self.run / genir_run.CONFIG_NAME

    def setting(self, section: str, key: str) -> Any:
        """A value of genir.toml as the file has it now (None when it has no such key)."""
        if self.state is None:
            return None
        table = self.state.section(section) if section else self.state.config
        return table.get(key)

    def has_setting(self, section: str, key: str) -> bool:
        try:
            text = self.config_path.read_text(encoding="utf-8")
        except OSError:
            return False
        return toml_edit.has_key(text, section, key)

    def save_settings(self, values: Mapping[tuple[str, str], toml_edit.Value]) -> str:
        """Write settings into genir.toml; "" or why it could not (a stage running, a key
        this engine's config does not have, a file that cannot be written)."""
        if any(run.active for run in self.runs.values()):
            return "A stage is running: change the settings once it has stopped."
        try:
            toml_edit.edit_file(self.config_path, values)
        except toml_edit.MissingKey as missing:
            return f"This run's genir.toml has no setting {missing.args[0]} (an older engine?)."
        except (OSError, ValueError) as error:
            return f"Could not write {self.config_path}: {error}"
        self.refresh()
        return ""

    # --- stage jobs -------------------------------------------------------------------------

    def stage_run(self, stage: str) -> StageRun:
        return self.runs.setdefault(stage, StageRun(stage))

    def running_stage(self) -> str | None:
        return next((name for name, run in self.runs.items() if run.active), None)

    def start(self, stage: str) -> asyncio.Task[None] | None:
        """Run (or resume) a stage; None when another stage is running."""
        if self.run is None or self.running_stage() is not None:
            return None
        request = REQUESTS[stage](run=str(self.run))
        return self._send(stage, request)

    def train_starter(
        self, max_steps: int | None = None, config: Path | None = None
    ) -> asyncio.Task[None] | None:
        """Train on the export: the starter restorer with the config the export wrote, or
        another trainer `config` (pointing at the export)."""
        if self.run is None or self.running_stage() is not None:
            return None
        config = config or self.train_config or self.run / TRAIN_CONFIG
        # resume: the trainer continues from a checkpoint when the run has one, else starts.
        request = p.Train(config=str(config), resume=True, max_steps=max_steps or 0)
        return self._send("train", request)

    def cancel(self, stage: str) -> asyncio.Task[None] | None:
        """Interrupt a running stage (it ends "cancelled", resumable)."""
        run = self.runs.get(stage)
        if run is None or not run.active or run.engine_job is None:
            return None
        return self._spawn(self.client.interrupt_job(run.engine_job))

    def _send(self, stage: str, request: p.Request) -> asyncio.Task[None]:
        run = self.runs[stage] = StageRun(stage, "starting", started=time.monotonic())
        self.stageChanged.emit(stage)

        async def send() -> None:
            try:
                # submit_job sets request.id before sending; `_on_event` names the job from its
                # `accepted` at once, so no event of the job that follows it is missed
                run.request = request
                run.engine_job = await self.client.submit_job(request)
            except EngineClientError as error:
                if run.status == "starting":
                    self._failed(run, str(error), error.hint)
                return
            if run.status == "starting":
                run.status = "running"
            self.stageChanged.emit(stage)

        return self._spawn(send())

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _run_of(self, event: p.Event) -> StageRun | None:
        job_id = getattr(event, "job_id", None)
        if not job_id:
            return None
        return next(
            (run for run in self.runs.values() if run.active and run.engine_job == job_id), None
        )

    def _on_event(self, event: p.Event) -> None:
        if isinstance(event, p.Accepted):
            for run in self.runs.values():
                request = run.request
                if run.status == "starting" and request and event.request_id == request.id:
                    run.engine_job = event.job_id
            return
        run = self._run_of(event)
        if run is None:
            return
        if isinstance(event, p.Started):
            run.status, run.started = "running", time.monotonic()
        elif isinstance(event, p.Progress):
            run.status, run.step, run.steps = "running", event.step, event.steps
            run.eta_s, run.label = event.eta_s, event.label
            if event.step > 0 and run.started:
                self.paces[run.stage] = (time.monotonic() - run.started) / event.step
            if loss := _LOSS.search(event.label):
                run.losses.append(float(loss.group(1)))
            if not self._rescan.isActive():
                self._rescan.start()
        elif isinstance(event, p.Result):
            run.status, run.output, run.eta_s = "done", event.output, None
            run.step = max(run.step, run.steps)
            self.refresh()
        elif isinstance(event, p.Error):
            self._failed(run, event.message, event.hint)
            self.refresh()
            return
        elif isinstance(event, p.Cancelled):
            run.status, run.eta_s = "cancelled", None
            self.refresh()
        else:
            return
        self.stageChanged.emit(run.stage)

    def _failed(self, run: StageRun, message: str, hint: str) -> None:
        run.status, run.error, run.hint, run.eta_s = "failed", message, hint, None
        log.warning("GenIR %s failed: %s", run.stage, message)
        self.stageChanged.emit(run.stage)

    def _on_connection(self, _old: ConnectionState, new: ConnectionState) -> None:
        if new not in (ConnectionState.LOST, ConnectionState.STOPPED):
            return
        for run in self.runs.values():
            if run.active:
                self._failed(run, CRASHED, CRASH_HINT)
        self.refresh()

    # --- generated images -------------------------------------------------------------------

    def generated_images(self) -> list[Path]:
        if self.run is None:
            return []
        folder = self.run / "generate" / "images"
        return sorted(folder.glob("*.png")) if folder.is_dir() else []

    def _notice_images(self) -> None:
        new = [path for path in self.generated_images() if path.name not in self.seen_images]
        if new:
            self.seen_images.update(path.name for path in new)
            self.imagesAppeared.emit(new)

    # --- filter -----------------------------------------------------------------------------

    def verdicts(self) -> list[dict[str, Any]]:
        return genir_run.read_verdicts(self.run) if self.run else []

    def overrides(self) -> dict[str, dict[str, Any]]:
        return genir_run.read_overrides(self.run) if self.run else {}

    def counts(self, threshold: float | None) -> tuple[int, int]:
        """(kept, rejected) at `threshold` (None: the verdicts as written), overrides applied."""
        overrides = self.overrides()
        kept = sum(
            genir_run.decided(v, overrides.get(str(v.get("key"))), threshold)
            for v in self.verdicts()
        )
        return kept, len(self.verdicts()) - kept

    def set_override(self, key: int | str, accepted: bool | None, note: str = "") -> None:
        """Record the user's decision on one image (None: drop it, the verdict stands), in
        filter/overrides.json, written atomically; a re-filter keeps it."""
        assert self.run is not None
        _write_decision(self.run / "filter", self.overrides(), key, accepted, note)
        self.overridesChanged.emit()
        self.refresh()

    # --- prompts ----------------------------------------------------------------------------

    def prompt_overrides(self) -> dict[str, dict[str, Any]]:
        return genir_run.read_prompt_overrides(self.run) if self.run else {}

    def set_prompt_override(self, index: int | str, accepted: bool | None, note: str = "") -> None:
        """Record the user's decision on one prompt candidate, by its `index` (None: take it
        back, the privacy filter's verdict stands), in prompts/overrides.json, written
        atomically; the prompts stage applies it when it runs again and never writes it."""
        assert self.run is not None
        _write_decision(self.run / "prompts", self.prompt_overrides(), index, accepted, note)
        self.promptOverridesChanged.emit()
        self.refresh()


def _write_decision(
    folder: Path,
    overrides: dict[str, dict[str, Any]],
    key: int | str,
    accepted: bool | None,
    note: str,
) -> None:
    """Set (or with `accepted` None, take back) one user decision in FOLDER/overrides.json,
    written atomically: the filter's and the prompts stage's files have the same form."""
    if accepted is None:
        overrides.pop(str(key), None)
    else:
        overrides[str(key)] = {"accepted": accepted, "note": note}
    folder.mkdir(parents=True, exist_ok=True)
    data = json.dumps(overrides, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    write_atomically(folder / "overrides.json", data.encode())
