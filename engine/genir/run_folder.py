"""A GenIR run folder: its config, its stages' files, and how far it got.

    RUN/genir.toml           the config (engine.genir.config), commented, written by `init`
    RUN/prompts/             stage "prompts" (engine.genir.prompts_stage)
    RUN/pairs/               stage 1 "pairs" (engine.genir.pairs_stage)
    RUN/finetune/            stage 2 "finetune" (engine.genir.finetune_output; checkpoints of
                             the trainer's genir-prompts task in RUN/finetune/train)
    RUN/generate/            stage 3 "generate" (engine.genir.generate_stage)
    RUN/classifier/          the quality classifier (trainer task `quality-classifier`)
    RUN/filter/              the filter's scores, verdicts and the user's overrides
                             (engine.genir.filter_stage, engine.genir.verdicts)
    RUN/export/              the accepted images, manifest and starter training config
                             (engine.genir.export_stage)

The folder is the truth: `run_status` reads what is there and trusts no other record (its
counts go up to generation; engine.genir.status adds every stage's state from its check).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import BadSettingError, OutputError
from engine.genir import finetune_output, generate_stage, pairs_stage, prompts_stage
from engine.genir.config import GenIRConfig, load_config, validate
from engine.genir.model_paths import resolve_model
from engine.genir.positives import find_images
from engine.imaging.atomic import atomic_write
from engine.typed_config import to_toml

CONFIG_NAME = "genir.toml"

CONFIG_HEADER = """\
# A GenIR dataset build (DreamClear's data pipeline), written by `dreamclear genir init`.
# Every setting is shown with its default and why; "Our choice" marks numbers the paper does
# not give. Relative paths are taken from this folder. A wrong field fails before any work.

"""


def init_run(run: Path, *, images: Path, base_model: Path, seed: int | None = None) -> Path:
    """Create the run folder `run` with a commented config for `images` and `base_model`
    (checked first). Refuses a folder that is not empty. Returns the config's path."""
    run = Path(run)
    if run.exists() and (not run.is_dir() or any(run.iterdir())):
        raise OutputError(
            f"{run} exists and is not an empty folder",
            hint="choose a new run folder, or see `dreamclear genir status` for this one",
        )
    base_model = resolve_model(base_model, Path.cwd())  # a store model's name, or a folder
    config = GenIRConfig(
        images=Path(os.path.abspath(images)), base_model=Path(os.path.abspath(base_model))
    )
    if seed is not None:
        config.seed = seed
    validate(config)
    run.mkdir(parents=True, exist_ok=True)
    path = run / CONFIG_NAME
    text = CONFIG_HEADER + to_toml(config, comments=True)
    atomic_write(path, lambda file: file.write(text.encode()), overwrite=False)
    return path


def load_run(run: Path) -> GenIRConfig:
    """The run's config, validated; a clear error when `run` is not a run folder."""
    run = Path(run)
    if not (run / CONFIG_NAME).is_file():
        raise BadSettingError(
            f"{run} is not a GenIR run folder (no {CONFIG_NAME})",
            hint="start one with `dreamclear genir init RUN --images DIR --base MODEL`",
        )
    return load_config(run / CONFIG_NAME)


@dataclass
class RunStatus:
    run: Path
    stage: str
    """The last stage whose results are in the folder ("initialised" when none)."""
    counts: dict[str, int] = field(default_factory=dict)
    """What the folder holds, by name (positive images, accepted prompts, ...)."""
    notes: list[str] = field(default_factory=list)
    """Other lines worth showing (throughput, ETA)."""

    def describe(self) -> str:
        lines = [f"run: {self.run}", f"stage reached: {self.stage}"]
        lines += [f"  {name}: {count}" for name, count in self.counts.items()]
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def run_status(run: Path) -> RunStatus:
    """How far the run in `run` got, read from its files."""
    config = load_run(run)
    status = RunStatus(Path(run), "initialised")
    status.counts["positive images"] = count_images(config.images)
    _prompts_status(status, config)
    pairs = pairs_stage.count_pairs(status.run)
    if pairs:
        status.counts["pairs"] = pairs
        status.stage = "pairs"
    _finetune_status(status, config)
    _generate_status(status)
    return status


def _finetune_status(status: RunStatus, config: GenIRConfig) -> None:
    """Steps in the newest complete checkpoint (the trainer's layout: checkpoints/checkpoint_N
    complete once its trainer-state.json is written) and whether the output is exported."""
    folder = finetune_output.output_folder(status.run)
    steps = [
        int(json.loads(marker.read_text(encoding="utf-8"))["step"])
        for marker in (folder / "train" / "checkpoints").glob("checkpoint_*/trainer-state.json")
    ]
    exported = (folder / finetune_output.PROMPTS_FILE).is_file()
    if not steps and not exported:
        return
    status.counts["finetune steps done"] = max(steps, default=0)
    status.counts["finetune steps wanted"] = config.finetune.steps
    status.counts["finetune exported"] = int(exported)
    status.stage = "finetune" if exported else "finetune (partial)"


def _generate_status(status: RunStatus) -> None:
    """Images journalled by every process (throughput and ETA: engine.genir.status)."""
    images = generate_stage.generated_images(status.run)
    if not images:
        return
    wanted = status.counts.get("prompts accepted", 0)
    status.counts["generated images"] = len(images)
    status.stage = "generate" if len(images) >= wanted else "generate (partial)"


def count_images(folder: Path) -> int:
    return len(find_images(folder))


def _prompts_status(status: RunStatus, config: GenIRConfig) -> None:
    folder = prompts_stage.stage_folder(status.run)
    final = folder / prompts_stage.ACCEPTED
    if final.is_file():
        accepted = _count_lines(final)
        rejected = _count_lines(folder / prompts_stage.REJECTED)
    else:
        chunks = sorted((folder / "chunks").glob("*.jsonl")) if folder.is_dir() else []
        if not chunks:
            return
        accepted = sum(_count_lines(p) for p in chunks if p.name.startswith("accepted-"))
        rejected = sum(_count_lines(p) for p in chunks if p.name.startswith("rejected-"))
    status.counts["prompts accepted"] = accepted
    status.counts["prompts rejected"] = rejected
    status.counts["prompts wanted"] = config.prompts.count
    done = final.is_file() and accepted >= config.prompts.count
    status.stage = "prompts" if done else "prompts (partial)"


def _count_lines(path: Path) -> int:
    """Complete lines in `path` (a line torn by a crash does not count)."""
    with open(path, "rb") as file:
        return sum(1 for line in file if line.endswith(b"\n"))
