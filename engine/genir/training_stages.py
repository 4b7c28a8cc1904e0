"""GenIR's training stages as stage functions: the trainer, run as a child process.

The engine never imports the trainer (and a training run must not take the engine down), so
`finetune` (trainer task `genir-prompts`) and the quality classifier's training run
`dreamclear train RUN/genir.toml` in a child process through engine.jobs.trainer_child, the
same code the engine's `train` job uses. These functions have the signature of every stage
function (`work(run, config, *, check_cancelled, report)`), so `genir run` and the engine's
stage jobs call them like the others; a run started again resumes from the last checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import JobInterrupted
from engine.genir.config import GenIRConfig
from engine.genir.run_folder import CONFIG_NAME

FINETUNE_TASK = ""
"""A genir.toml trains the dual prompts (task `genir-prompts`) when no task is named."""
CLASSIFIER_TASK = "quality-classifier"
"""The trainer task of the filter's quality classifier (trainer/tasks/quality_classifier.py)."""


@dataclass(frozen=True)
class TrainingOutcome:
    path: Path
    """The folder the trainer exported to."""


def run_finetune_stage(
    run: Path,
    config: GenIRConfig,
    *,
    check_cancelled: Callable[[], None] = lambda: None,
    report: Callable[[int, int], None] = lambda done, total: None,
) -> TrainingOutcome:
    """Stage 2: learn the dual prompts and the cross-attention (RUN/finetune/)."""
    return _train(Path(run), FINETUNE_TASK, check_cancelled, report)


def run_classifier_stage(
    run: Path,
    config: GenIRConfig,
    *,
    check_cancelled: Callable[[], None] = lambda: None,
    report: Callable[[int, int], None] = lambda done, total: None,
) -> TrainingOutcome:
    """The filter's quality classifier, on the run's pairs (RUN/classifier/)."""
    return _train(Path(run), CLASSIFIER_TASK, check_cancelled, report)


def _train(run: Path, task: str, check_cancelled, report) -> TrainingOutcome:
    from engine.jobs.trainer_child import run_trainer_child, trainer_command

    argv = trainer_command(run / CONFIG_NAME, task=task, resume=True)
    exported = run_trainer_child(argv, _CallbackContext(check_cancelled, report))
    return TrainingOutcome(exported)


class _CallbackContext:
    """What `run_trainer_child` needs of a JobContext, made of a stage function's two callbacks:
    its steps go to `report(done, total)`, and `check_cancelled` (which raises JobInterrupted
    when the run is to stop) answers `cancel.cancelled`."""

    def __init__(self, check_cancelled: Callable[[], None], report: Callable[[int, int], None]):
        self._check_cancelled = check_cancelled
        self._report = report
        self.cancel = self
        self.progress = self

    @property
    def cancelled(self) -> bool:
        try:
            self._check_cancelled()
        except JobInterrupted:
            return True
        return False

    def stage(self, name: str) -> None:
        return None

    def report(self, position) -> None:
        self._report(position.step, position.steps)

    def flush(self) -> None:
        return None
