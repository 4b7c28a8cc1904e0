"""`dreamclear-studio` and `dreamclear` as installed: set up when needed, then run the command.

dreamclear-studio [PATHS...]           the app; the first start sets up the environment
dreamclear-studio --setup              set up now (or update), then exit
dreamclear-studio --repair             rebuild the environment from scratch, then exit
dreamclear-studio --torch cu128 --setup      choose the torch build (auto: by the GPU)
dreamclear-studio --wheelhouse DIR --setup   offline, from a folder of wheels
dreamclear-studio --remove-runtime     delete the environment (your files stay)
dreamclear ...                         the command line (sets up first when needed)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from setup_env.environment import Plan, Stamp, build, needs_build, recover, relink_app
from setup_env.errors import SetupError
from setup_env.gpu import detect_gpus
from setup_env.paths import Runtime, env_python
from setup_env.progress import make_reporter
from setup_env.torch_build import CHOICES, TorchChoice, choose
from setup_env.uv_tool import find_uv

MODULES = {"dreamclear-studio": "desktop.app", "dreamclear": "dreamclear.cli"}


def setup_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dreamclear-studio",
        description="DreamClear Studio's first-run set-up: a private environment with torch "
        "for this machine, in your data folder (docs/installers.md).",
        allow_abbrev=False,
        add_help=False,
    )
    parser.add_argument("--help-setup", action="help", help="show these options and exit")
    parser.add_argument("--setup", action="store_true", help="set up (or update) now and exit")
    parser.add_argument(
        "--repair", action="store_true", help="rebuild the environment from scratch and exit"
    )
    parser.add_argument(
        "--torch",
        choices=CHOICES,
        default="auto",
        help="the torch build: auto (by the NVIDIA driver and GPU found), cpu or a CUDA build",
    )
    parser.add_argument(
        "--wheelhouse",
        type=Path,
        metavar="DIR",
        help="install offline from the wheels in DIR (uv and every package)",
    )
    parser.add_argument(
        "--remove-runtime",
        action="store_true",
        help="delete the environment and its download cache (your photos, settings and "
        "models stay) and exit",
    )
    parser.add_argument(
        "--setup-log", action="store_true", help="show uv's output while setting up"
    )
    return parser


@contextlib.contextmanager
def setup_lock(runtime: Runtime) -> Iterator[None]:
    """One set-up at a time per user: a second start waits for the first one's environment."""
    runtime.root.mkdir(parents=True, exist_ok=True)
    with open(runtime.root / "setup.lock", "a+b") as file:
        if sys.platform == "win32":
            import msvcrt

            file.seek(0)
            while True:
                try:
                    msvcrt.locking(file.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after 10 s; keep waiting
                    continue
        else:
            import fcntl

            fcntl.flock(file, fcntl.LOCK_EX)
        yield


def set_up(options: argparse.Namespace, plan: Plan, window: bool) -> None:
    reporter = make_reporter(window, options.setup_log)

    def work(report) -> None:  # type: ignore[no-untyped-def]
        report.progress(f"Torch build: {plan.choice.build} ({plan.choice.reason})", 0.01)
        uv = find_uv(plan.runtime.uv_dir, plan.app_dir, plan.wheelhouse)
        build(plan, uv, report.progress, report.output)

    print(f"Setting up DreamClear Studio in {plan.runtime.root} ...", file=sys.stderr)
    reporter.run(work)
    print(f"Set-up done (log: {plan.runtime.log}).", file=sys.stderr)


def pick_torch(options: argparse.Namespace) -> TorchChoice:
    if options.wheelhouse is not None and options.torch == "auto":
        return TorchChoice("wheelhouse", f"the torch build in {options.wheelhouse}")
    return choose(detect_gpus() if options.torch == "auto" else [], options.torch)


def run_in_env(runtime: Runtime, module: str, args: Sequence[str]) -> int:
    command = [str(env_python(runtime.env)), "-I", "-m", module, *args]
    if sys.platform == "win32":  # exec on Windows starts a new process and returns at once
        return subprocess.call(command)
    os.execv(command[0], command)
    return 0  # not reached


def main(argv: Sequence[str], app_dir: Path) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    command, args = argv[0], list(argv[1:])
    options, rest = setup_parser().parse_known_args(args if command == "dreamclear-studio" else [])
    if command != "dreamclear-studio":
        rest = args
    runtime = Runtime.default()
    if options.remove_runtime:
        shutil.rmtree(runtime.root, ignore_errors=True)
        print(f"Removed {runtime.root} (your photos, settings and models are kept).")
        return 0
    python_mm = f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        with setup_lock(runtime):
            recover(runtime)
            current = Stamp.read(runtime.env)
            # The GPU is asked only when an environment is to be built (or the build named).
            plan = Plan(runtime, app_dir, sys.executable, choose([]), options.wheelhouse)
            reason = needs_build(plan, python_mm)
            asked = options.torch != "auto" and current and current.torch_build != options.torch
            if options.repair or reason or asked:
                choice = pick_torch(options)
                plan = Plan(
                    runtime, app_dir, sys.executable, choice, options.wheelhouse, options.repair
                )
                set_up(options, plan, window=command == "dreamclear-studio")
            elif options.setup:
                print(f"The environment in {runtime.env} is up to date.", file=sys.stderr)
            relink_app(plan)
    except SetupError as error:
        print(f"DreamClear Studio could not be set up: {error}", file=sys.stderr)
        return 1
    if options.setup or options.repair:
        return 0
    return run_in_env(runtime, MODULES[command], rest)
