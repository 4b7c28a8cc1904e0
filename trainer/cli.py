"""`dreamclear train CONFIG.toml [--resume latest|PATH] [--max-steps N] [--max-minutes M]
[--output-dir DIR] [--task TASK]`.

On one device it runs as is. For several GPUs or nodes, start the same command through
accelerate (its own `accelerate config` decides processes and precision flags; plain DDP, as
FSDP and DeepSpeed checkpoints are pickles):

    accelerate launch -m dreamclear.cli train resources/configs/dreamclear.toml --resume latest

The config is parsed and checked once, here, before any model is built.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.common import print_error
from engine.errors import EngineError

DESCRIPTION = """Train a model from a TOML config (see resources/configs/).

Checkpoints go to OUTPUT/checkpoints/checkpoint_<n> with the config beside the weights;
`--resume latest` continues from the newest complete one at exactly the same data position.
At the end the final weights are exported to OUTPUT/export/."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the starter model or DreamClear's control modules",
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
        "--task",
        default=None,
        metavar="TASK",
        help="the task to train; with a GenIR run's genir.toml, quality-classifier trains the "
        "run's quality classifier (GenIR's filter) into RUN/classifier",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from typing import get_args

    from trainer.config import ConfigError, TaskName, load_config

    task = getattr(args, "task", None)
    try:
        if task is not None and task not in get_args(TaskName):
            raise ConfigError(
                f"Unknown task {task!r}.", hint=f"choose one of {', '.join(get_args(TaskName))}"
            )
        if task == "quality-classifier":
            # Reads a GenIR run's genir.toml, not a training config.
            from trainer.tasks.quality_classifier import genir_train_config as load_config

            task = None
        config = load_config(
            args.config,
            task=task,
            max_steps=args.max_steps,
            max_minutes=args.max_minutes,
            **{"checkpointing.output_dir": args.output_dir},
        )
        # torch, accelerate and the models load only once the config is known to be good.
        from trainer.loop import train

        export = train(config, resume=args.resume)
    except EngineError as error:
        print_error(error)
        return 1
    print(f"Training done; weights exported to {export}")
    return 0
