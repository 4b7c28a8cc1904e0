"""`dreamclear train CONFIG.toml [--resume latest|PATH] [--max-steps N] [--max-minutes M]
[--output-dir DIR] [--events PATH|-] [--task TASK]`.

On one device it runs as is. For several GPUs or nodes, start the same command through
accelerate (its own `accelerate config` decides processes and precision flags; plain DDP, as
FSDP and DeepSpeed checkpoints are pickles):

    accelerate launch -m dreamclear.cli train resources/configs/dreamclear.toml --resume latest

The config is parsed and checked once, here, before any model is built. A GenIR run's
config (RUN/genir.toml) is a training config too: its `finetune` section trains the
genir-prompts task (trainer.genir_run), also reachable as `dreamclear genir finetune RUN`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.common import print_error
from engine.errors import EngineError

DESCRIPTION = """Train a model from a TOML config (see resources/configs/).

Checkpoints go to OUTPUT/checkpoints/checkpoint_<n> with the config beside the weights;
`--resume latest` continues from the newest complete one at exactly the same data position.
Ctrl-C or SIGTERM stops after the current step with a checkpoint (a second one: at once).
At the end the final weights are exported to OUTPUT/export/.

Tasks (the config's `task`): starter (restorer and degradation estimator), starter-gate (the
gate between a starter's two restorers, both frozen: resources/configs/starter-v2-gate.toml),
dreamclear, genir-prompts, quality-classifier.

A GenIR run's config (RUN/genir.toml) trains its dual prompts (task genir-prompts): checkpoints
in RUN/finetune/train, the result in RUN/finetune/ (same as `dreamclear genir finetune RUN`)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the starter model (restorers, estimator, gate) or DreamClear's control modules",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "config", type=Path, help="a training config, e.g. resources/configs/starter.toml"
    )
    parser.add_argument(
        "--resume",
        metavar="latest|PATH",
        default=None,
        help="continue from the newest complete checkpoint, or from a checkpoint folder",
    )
    parser.add_argument(
        "--max-steps", type=int, default=None, metavar="N", help="override max_steps"
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        metavar="M",
        help="override max_minutes: stop (checkpoint, validate, export) after M minutes",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="override checkpointing.output_dir",
    )
    parser.add_argument(
        "--events",
        metavar="PATH|-",
        default=None,
        help="also write the run's progress as JSON lines to PATH, or to stdout with '-' "
        "(trainer/events.py; the engine's `train` job reads them)",
    )
    parser.add_argument(
        "--task",
        default=None,
        metavar="TASK",
        help="the task to train (default: the config's; genir-prompts for a GenIR run's "
        "genir.toml); quality-classifier with a genir.toml trains the run's quality "
        "classifier (GenIR's filter) into RUN/classifier",
    )
    parser.set_defaults(func=run)


def register_genir_finetune(verbs: argparse._SubParsersAction) -> None:
    """`dreamclear genir finetune RUN`: the trainer behind a verb of the engine's `genir`
    command (the engine may not import the trainer; dreamclear/cli.py joins the two)."""
    parser = verbs.add_parser(
        "finetune",
        help="learn the dual prompts and cross-attention (resumes from the last checkpoint)",
        description="Stage 2: train the run's positive and negative tokens with the UNet's "
        "cross-attention on its pairs. Checkpoints go to RUN/finetune/train; the result to "
        "RUN/finetune/. Same as `dreamclear train RUN/genir.toml --resume latest`.",
    )
    parser.add_argument("run", type=Path, help="run folder")
    parser.add_argument(
        "--max-steps", type=int, default=None, metavar="N", help="override finetune.steps"
    )
    parser.add_argument(
        "--max-minutes", type=float, default=None, metavar="M", help="stop after M minutes"
    )
    parser.add_argument(
        "--events",
        metavar="PATH|-",
        default=None,
        help="also write progress as JSON lines to PATH (- for stdout), as `train` does",
    )
    parser.set_defaults(func=run_genir_finetune)


def run_genir_finetune(args: argparse.Namespace) -> int:
    from trainer.genir_run import GENIR_CONFIG_NAME

    # Like every GenIR stage, running it again continues where it stopped.
    args = argparse.Namespace(
        config=args.run / GENIR_CONFIG_NAME,
        resume="latest",
        max_steps=args.max_steps,
        max_minutes=args.max_minutes,
        output_dir=None,
        events=args.events,
    )
    return run(args)


def run(args: argparse.Namespace) -> int:
    from typing import get_args

    from trainer.config import ConfigError, TaskName, load_config
    from trainer.events import TrainEvents
    from trainer.genir_run import (
        check_resume_settings,
        is_genir_run_config,
        train_config_for_run,
    )

    events = TrainEvents.open(args.events)
    try:
        overrides = {
            "max_steps": args.max_steps,
            "max_minutes": args.max_minutes,
            "checkpointing.output_dir": args.output_dir,
        }
        task = getattr(args, "task", None)
        if task is not None and task not in get_args(TaskName):
            raise ConfigError(
                f"Unknown task {task!r}.", hint=f"choose one of {', '.join(get_args(TaskName))}"
            )
        if is_genir_run_config(args.config) and task == "quality-classifier":
            from trainer.tasks.quality_classifier import genir_train_config

            config = genir_train_config(args.config, **overrides)
        elif is_genir_run_config(args.config):
            if task not in (None, "genir-prompts"):
                raise ConfigError(
                    f"A GenIR run's config trains genir-prompts or quality-classifier, not {task}."
                )
            config = train_config_for_run(args.config, **overrides)
            if args.resume is not None:
                check_resume_settings(config, args.resume)
        else:
            config = load_config(args.config, task=task, **overrides)
        # torch, accelerate and the models load only once the config is known to be good.
        from trainer.loop import train

        export = train(config, resume=args.resume, events=events)
    except EngineError as error:
        events.error(error)
        print_error(error)
        return 1
    except Exception as error:  # a bug, or a loss gone NaN: the traceback stays for people
        events.error(error)
        raise
    finally:
        events.close()
    print(f"Training done; weights exported to {export}", file=events.words)
    return 0
