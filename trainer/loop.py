"""The one training loop, on accelerate, shared by every task.

accelerate handles devices, mixed precision, multiple GPUs and gradient accumulation. Every
`checkpoint_every` steps the trainer writes `OUTPUT/checkpoints/checkpoint_<n>` (at most
`keep_last` kept): the models, the optimiser and the RNG states (`training_state`, files that
hold no code), the config (TOML) and, last, the completion marker with our `TrainingProgress`.
Resuming loads a complete checkpoint and skips the batches already seen in its epoch, so the
data continues at the exact sample. A first Ctrl-C (SIGINT) or SIGTERM stops after the current
step with a checkpoint (trainer/interrupt.py).

Outputs: `losses.csv` (one row per optimiser step), `validation/metrics.csv` and
`validation/step_<n>/` sample images, and `export/` (the task's loadable weights) at the end.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from engine.errors import JobInterrupted
from trainer import checkpoints, training_state
from trainer.config import ConfigError, TrainConfig, config_to_toml
from trainer.events import TrainEvents
from trainer.interrupt import StopRequest
from trainer.lr_schedule import learning_rate_factor, set_learning_rates
from trainer.tasks import build_task
from trainer.tasks.base import Task

logger = logging.getLogger(__name__)


class TrainingProgress:
    """Where the run is; saved in every checkpoint's completion marker (JSON)."""

    def __init__(self) -> None:
        self.step = 0
        """Optimiser steps done."""
        self.batches_seen = 0
        """Batches consumed from the data loader (epoch = batches_seen // batches per epoch)."""

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step, "batches_seen": self.batches_seen}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step, self.batches_seen = int(state["step"]), int(state["batches_seen"])


def batch_generator(seed: int, process: int, batch: int, device: torch.device) -> torch.Generator:
    """The generator of one batch's randomness, a pure function of (seed, process, batch)."""
    state = np.random.SeedSequence([seed, process, batch]).generate_state(1)[0]
    return torch.Generator(device=device).manual_seed(int(state))


def build_optimizer(
    config: TrainConfig, task: Task, models: list[nn.Module]
) -> torch.optim.Optimizer:
    opt = config.optimisation
    kind = torch.optim.AdamW if opt.optimizer == "adamw" else torch.optim.Adam
    groups = task.parameter_groups(models)
    return kind(groups, lr=opt.learning_rate, betas=opt.betas, weight_decay=opt.weight_decay)


class Trainer:
    """Runs one task from a config; `run()` trains to `max_steps` and exports."""

    def __init__(
        self,
        config: TrainConfig,
        resume: str | None = None,
        events: TrainEvents | None = None,
        stop: StopRequest | None = None,
    ) -> None:
        self.config = config
        self.stop = stop
        """Asked (SIGINT or SIGTERM): checkpoint after the current step and end with JobInterrupted."""
        self.output_dir = config.checkpointing.output_dir
        self.accelerator = Accelerator(
            mixed_precision=config.mixed_precision,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
        )
        training_state.check_supported(self.accelerator)
        self.events = events if events and self.accelerator.is_main_process else TrainEvents(None)
        """`--events`: written by the main process only."""
        self.progress = TrainingProgress()
        self.next_checkpoint = 0
        """The n of the next `checkpoint_<n>` folder."""
        checkpoint = self._checkpoint_to_resume(resume)
        set_seed(config.seed)
        self.task: Task = build_task(config)
        models = self.task.build(self.accelerator.device)
        loader = DataLoader(
            self.task.train_dataset(),
            batch_size=config.data.batch_size,
            shuffle=False,  # the dataset draws its own random crops from (seed, epoch, index)
            drop_last=True,
            num_workers=config.data.num_workers,
            collate_fn=self.task.collate,
        )
        optimizer = build_optimizer(config, self.task, models)
        self.base_rates = [group["lr"] for group in optimizer.param_groups]
        *self.models, self.optimizer, self.loader = self.accelerator.prepare(
            *models, optimizer, loader
        )
        self._start(checkpoint, resume)

    # ------------------------------------------------------------------ set-up

    def _checkpoint_to_resume(self, resume: str | None) -> Path | None:
        """The checkpoint to load, checked before any model is built."""
        if resume is None:
            if checkpoints.complete_checkpoints(self.output_dir):
                raise ConfigError(
                    f"{self.output_dir} already holds checkpoints of a run.",
                    hint="continue it with --resume latest, or choose another output folder",
                )
            return None
        return checkpoints.resolve_checkpoint(self.output_dir, resume)

    def _start(self, folder: Path | None, resume: str | None) -> None:
        if self.accelerator.is_main_process:
            checkpoints.remove_incomplete(self.output_dir)
        self.accelerator.wait_for_everyone()
        self.next_checkpoint = checkpoints.next_checkpoint_index(self.output_dir)
        if folder is not None:
            self._load_checkpoint(folder)
            logger.info("Resumed from %s at step %d.", folder, self.progress.step)
        elif resume == "latest":
            logger.warning("No checkpoint in %s yet: starting a new run.", self.output_dir)
        if self.accelerator.is_main_process:
            # What a killed run logged after its checkpoint (all of it, when it had none) is
            # about to be logged again.
            last_kept = self.progress.step if folder is not None else -1
            for log in (
                self.output_dir / "losses.csv",
                self.output_dir / "validation" / "metrics.csv",
            ):
                checkpoints.truncate_csv(log, last_kept)

    def _load_checkpoint(self, folder: Path) -> None:
        with training_state.reading(folder / checkpoints.COMPLETE_MARKER, "the progress"):
            self.progress.load_state_dict(checkpoints.read_marker(folder))
        training_state.load_training_state(folder, self.accelerator, self.models, self.optimizer)
        # accelerate's gradient-accumulation counter, which its own load_state would restore:
        # the batches seen in this epoch (it restarts at the end of each).
        self.accelerator.step = self.progress.batches_seen % len(self.loader)

    # ------------------------------------------------------------------ loop

    def run(self) -> Path:
        """Train to `max_steps` (or `max_minutes`), checkpoint, validate, export; returns the
        export folder."""
        config, accelerator, progress = self.config, self.accelerator, self.progress
        max_steps = config.max_steps
        deadline = time.monotonic() + 60.0 * config.max_minutes if config.max_minutes else None
        bar = tqdm(
            total=max_steps,
            initial=progress.step,
            desc=f"train {config.task}",
            unit="step",
            disable=not accelerator.is_main_process,
            mininterval=2.0,
            dynamic_ncols=True,
        )
        self.events.emit(
            "started", steps=max_steps, resume_step=progress.step, output_dir=self.output_dir
        )
        saved_at = validated_at = progress.step
        if progress.step == 0 and config.validation.at_start:
            self.validate()
        started, first_step = time.monotonic(), progress.step
        stopping = interrupted = False
        while progress.step < max_steps and not stopping:
            epoch, skip = divmod(progress.batches_seen, len(self.loader))
            batches = accelerator.skip_first_batches(self.loader, skip) if skip else self.loader
            # accelerate's loaders pass their epoch on to the dataset's `set_epoch` themselves.
            batches.set_epoch(epoch)
            losses: list[float] = []
            for batch in batches:
                logs = self._train_batch(batch)
                losses.append(logs.pop("loss"))
                progress.batches_seen += 1
                if not accelerator.sync_gradients:
                    continue
                progress.step += 1
                loss = float(np.mean(losses))
                losses = []
                if deadline is not None:
                    now = time.monotonic()
                    steps_run, seconds_run = progress.step - first_step, now - started
                    bar.total = time_limited_total(
                        steps_run, seconds_run, deadline - now, progress.step, max_steps
                    )
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
                self._step_event(loss, bar.total, time.monotonic() - started, first_step)
                if accelerator.is_main_process:
                    checkpoints.append_csv(
                        self.output_dir / "losses.csv",
                        {"step": progress.step, "loss": loss, **logs},
                    )
                if not math.isfinite(loss):
                    raise FloatingPointError(f"the loss became {loss} at step {progress.step}")
                if progress.step % config.checkpointing.checkpoint_every == 0:
                    self.save_checkpoint()
                    saved_at = progress.step
                every = config.validation.every
                if every and progress.step % every == 0:
                    self.validate()
                    validated_at = progress.step
                if progress.step >= max_steps:
                    break
                if self._stop_asked():
                    stopping = interrupted = True
                    break
                if self._time_is_up(deadline):
                    logger.info("max_minutes reached at step %d: stopping.", progress.step)
                    stopping = True
                    break
        bar.close()
        if saved_at != progress.step or not checkpoints.complete_checkpoints(self.output_dir):
            self.save_checkpoint()
        if interrupted:
            accelerator.end_training()
            raise JobInterrupted(
                f"training interrupted at step {progress.step}, its checkpoint saved",
                hint="continue with --resume latest",
            )
        if validated_at != progress.step:
            self.validate()
        target = config.checkpointing.export_dir or self.output_dir / "export"
        if accelerator.is_main_process:
            self.task.export(self.output_dir, target)
            self.events.emit("exported", path=target)
        accelerator.wait_for_everyone()
        accelerator.end_training()
        return target

    def _step_event(self, loss: float, total: int, seconds_run: float, first_step: int) -> None:
        step = self.progress.step
        per_step = seconds_run / max(1, step - first_step)
        eta = per_step * max(0, total - step)
        self.events.emit(
            "step",
            step=step,
            steps=total,
            loss=loss,
            seconds_per_step=round(per_step, 4),
            eta_seconds=round(eta, 1),
        )

    def _stop_asked(self) -> bool:
        """Whether a process was interrupted (SIGINT or SIGTERM); every process stops at the same step."""
        asked = self.stop is not None and self.stop.asked
        if self.accelerator.num_processes == 1:
            return asked
        flag = torch.tensor(float(asked), device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, reduction="sum") > 0)

    def _time_is_up(self, deadline: float | None) -> bool:
        """Whether the time budget is spent; every process stops at the same step."""
        if deadline is None:
            return False
        late = torch.tensor(float(time.monotonic() >= deadline), device=self.accelerator.device)
        return bool(self.accelerator.reduce(late, reduction="sum") > 0)

    def _train_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        accelerator = self.accelerator
        generator = batch_generator(
            self.config.seed,
            accelerator.process_index,
            self.progress.batches_seen,
            accelerator.device,
        )
        with accelerator.accumulate(*self.models):
            loss, logs = self.task.loss(self.models, batch, generator)
            accelerator.backward(loss)
            if accelerator.sync_gradients and self.config.optimisation.max_grad_norm > 0:
                params = [p for m in self.models for p in m.parameters() if p.requires_grad]
                accelerator.clip_grad_norm_(params, self.config.optimisation.max_grad_norm)
            factor = learning_rate_factor(
                self.config.optimisation, self.progress.step, self.config.max_steps
            )
            set_learning_rates(self.optimizer, self.base_rates, factor)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if accelerator.sync_gradients:
                self.task.after_optimizer_step(self.models, self.progress.step)
        return {"loss": float(loss.detach()), **logs}

    # ------------------------------------------------------------------ save / validate

    def save_checkpoint(self) -> Path:
        """The training state, then the config, then (last) the completion marker; then the
        checkpoints beyond `keep_last` go, oldest first."""
        folder = self.output_dir / "checkpoints" / f"checkpoint_{self.next_checkpoint}"
        self.next_checkpoint += 1
        folder.mkdir(parents=True, exist_ok=True)
        training_state.save_training_state(folder, self.accelerator, self.models, self.optimizer)
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            (folder / checkpoints.CONFIG_FILE).write_text(
                config_to_toml(self.config), encoding="utf-8"
            )
            checkpoints.write_marker(folder, self.progress.state_dict())
            checkpoints.remove_oldest(self.output_dir, self.config.checkpointing.keep_last)
            self.events.emit("checkpoint", step=self.progress.step, path=folder)
        self.accelerator.wait_for_everyone()
        return folder

    def validate(self) -> None:
        if self.accelerator.is_main_process:
            step = self.progress.step
            models = [self.accelerator.unwrap_model(model) for model in self.models]
            for model in models:
                model.eval()
            with torch.no_grad():
                metrics = self.task.validate(
                    models, self.output_dir / "validation" / f"step_{step:06d}"
                )
            for model in models:
                model.train()
            if metrics:
                checkpoints.append_csv(
                    self.output_dir / "validation" / "metrics.csv", {"step": step, **metrics}
                )
                logger.info("step %d validation: %s", step, metrics)
                self.events.emit("validation", step=step, metrics=metrics)
        self.accelerator.wait_for_everyone()


def train(
    config: TrainConfig, resume: str | None = None, events: TrainEvents | None = None
) -> Path:
    """Train as configured (optionally resuming), writing `events` (`--events`) if given;
    returns the export folder. A first Ctrl-C (SIGINT) or SIGTERM stops after the current step
    with a checkpoint (trainer/interrupt.py)."""
    with StopRequest() as stop:
        return Trainer(config, resume, events, stop).run()


def time_limited_total(
    steps_run: int, seconds_run: float, seconds_left: float, step: int, max_steps: int
) -> int:
    """The progress bar's total under a time budget: the step the run will reach when
    `max_minutes` is up at its pace so far, if that comes before `max_steps`, so the bar's
    ETA is the budget's and not that of max_steps (which may be days away)."""
    if steps_run <= 0 or seconds_run <= 0:
        return max_steps
    reachable = step + int(max(0.0, seconds_left) * steps_run / seconds_run)
    return max(step, min(max_steps, reachable))
