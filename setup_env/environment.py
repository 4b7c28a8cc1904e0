"""Build the private environment beside the old one and swap it in only when it is complete.

A failed or interrupted set-up leaves the environment in use as it was: everything happens
in `env.new`, and only a finished one is renamed to `env` (the old one goes to `env.old` for
the moment of the swap and is then deleted). The app's code is not installed into the
environment: a `.pth` file points at the installed app folder, so a package update that
changes no dependency needs no new environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from setup_env.errors import SetupError
from setup_env.paths import Runtime, env_python
from setup_env.pins import TORCH, TORCHVISION, UV_VERSION
from setup_env.torch_build import PYPI, TorchChoice

STAMP = "dreamclear-env.json"
APP_PTH = "dreamclear-studio-app.pth"


@dataclass(frozen=True)
class Stamp:
    """What an environment was built from; a difference in anything but app_dir means a new
    one (app_dir only needs the .pth rewritten)."""

    requirements_sha256: str
    python: str
    """The interpreter's major.minor: a new Python cannot use the old one's packages."""
    torch_build: str
    uv: str
    app_dir: str

    @classmethod
    def read(cls, env: Path) -> Stamp | None:
        try:
            return cls(**json.loads((env / STAMP).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write(self, env: Path) -> None:
        (env / STAMP).write_text(json.dumps(asdict(self), indent=2) + "\n")


def requirements_digest(requirements: Path) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


def python_version(python: str) -> str:
    done = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def install_commands(
    uv: Path,
    env: Path,
    python: str,
    requirements: Path,
    choice: TorchChoice,
    wheelhouse: Path | None,
    repair: bool,
) -> list[tuple[str, list[str]]]:
    """The uv commands that build ENV, each with the words the progress shows for it."""
    # Compiled once here, as the user waits for set-up anyway: otherwise the first start of the
    # app compiles torch's modules and takes many seconds longer.
    target = ["--python", str(env_python(env)), "--compile-bytecode"]
    again = ["--reinstall", "--refresh"] if repair else []
    commands = [
        (
            "Creating the environment",
            [str(uv), "venv", "--relocatable", "--python", python, str(env)],
        )
    ]
    if wheelhouse is not None:
        source = ["--no-index", "--find-links", str(wheelhouse)]
        commands.append(
            (
                "Installing torch and the other packages from the wheelhouse",
                [str(uv), "pip", "install", *target, *source, *again, "-r", str(requirements)],
            )
        )
        return commands
    # uv searches --extra-index-url before --index-url and takes a package from the first
    # index that has it: torch comes from PyTorch's index, the rest from PyPI.
    torch_source = ["--index-url", PYPI]
    if choice.extra_index:
        torch_source += ["--extra-index-url", choice.extra_index]
    pins = [f"torch=={TORCH}", f"torchvision=={TORCHVISION}"]
    commands.append(
        (
            f"Installing torch ({choice.build})",
            [str(uv), "pip", "install", *target, *torch_source, *again, *pins],
        )
    )
    commands.append(
        (
            "Installing the other packages",
            [str(uv), "pip", "install", *target, "--index-url", PYPI, "-r", str(requirements)],
        )
    )
    return commands


def write_app_pth(env: Path, app_dir: Path) -> None:
    """Put the app's folder on the environment's sys.path."""
    done = subprocess.run(
        [env_python(env), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    (Path(done.stdout.strip()) / APP_PTH).write_text(f"{app_dir}\n")


def recover(runtime: Runtime) -> None:
    """Undo an interrupted swap (env renamed away, env.new not yet in) and drop a half-built env."""
    if not runtime.env.exists() and runtime.env_old.exists():
        runtime.env_old.rename(runtime.env)
    for leftover in (runtime.env_new, runtime.env_old):
        if leftover.exists():
            shutil.rmtree(leftover)


def swap_in(runtime: Runtime) -> None:
    if runtime.env.exists():
        runtime.env.rename(runtime.env_old)
    runtime.env_new.rename(runtime.env)
    if runtime.env_old.exists():
        shutil.rmtree(runtime.env_old)


Output = Callable[[str], None]


def run_logged(command: list[str], log: Path, output: Output, environ: dict[str, str]) -> None:
    """Run a command, its output line by line to OUTPUT and the log; SetupError if it fails."""
    with open(log, "a", encoding="utf-8") as file:
        file.write(f"$ {' '.join(command)}\n")
        file.flush()
        try:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                env=environ,
            )
        except OSError as error:
            raise SetupError(f"could not run {command[0]}: {error}") from error
        assert process.stdout is not None
        for line in process.stdout:
            file.write(line)
            output(line.rstrip())
        if process.wait() != 0:
            raise SetupError(
                f"{Path(command[0]).name} {command[1]} {command[2] if len(command) > 2 else ''} "
                f"failed (exit code {process.returncode})".replace("  ", " "),
                hint=f"the whole output is in {log}; fix what it says and run "
                "`dreamclear-studio --repair`",
            )


@dataclass(frozen=True)
class Plan:
    """One set-up: what to build, from what."""

    runtime: Runtime
    app_dir: Path
    python: str
    choice: TorchChoice
    wheelhouse: Path | None = None
    repair: bool = False

    @property
    def requirements(self) -> Path:
        return self.app_dir / "requirements.txt"

    def stamp(self, python_mm: str) -> Stamp:
        return Stamp(
            requirements_sha256=requirements_digest(self.requirements),
            python=python_mm,
            torch_build=self.choice.build,
            uv=UV_VERSION,
            app_dir=str(self.app_dir),
        )


Progress = Callable[[str, float], None]


def build(plan: Plan, uv: Path, progress: Progress, output: Output) -> None:
    """Build the environment for PLAN in env.new and swap it in; on failure env is untouched."""
    runtime = plan.runtime
    runtime.root.mkdir(parents=True, exist_ok=True)
    recover(runtime)
    environ = {**os.environ, "UV_CACHE_DIR": str(runtime.cache), "UV_NO_PROGRESS": "1"}
    if sys.platform != "win32":
        environ["UV_PYTHON_DOWNLOADS"] = "never"  # the system's Python, which the package needs
    commands = install_commands(
        uv,
        runtime.env_new,
        plan.python,
        plan.requirements,
        plan.choice,
        plan.wheelhouse,
        plan.repair,
    )
    try:
        for step, (words, command) in enumerate(commands):
            progress(words, 0.05 + 0.9 * step / len(commands))
            run_logged(command, runtime.log, output, environ)
        progress("Finishing", 0.96)
        write_app_pth(runtime.env_new, plan.app_dir)
        plan.stamp(python_version(str(env_python(runtime.env_new)))).write(runtime.env_new)
    except BaseException:
        shutil.rmtree(runtime.env_new, ignore_errors=True)
        raise
    swap_in(runtime)
    progress("Ready", 1.0)


def needs_build(plan: Plan, python_mm: str) -> str | None:
    """Why the environment must be (re)built for PLAN, or None when it is up to date."""
    env = plan.runtime.env
    stamp = Stamp.read(env)
    if stamp is None or not env_python(env).exists():
        return "no environment yet"
    wanted = plan.stamp(python_mm)
    if stamp.requirements_sha256 != wanted.requirements_sha256:
        return "the app's dependencies changed"
    if stamp.python != wanted.python:
        return f"Python changed from {stamp.python} to {wanted.python}"
    return None


def relink_app(plan: Plan) -> None:
    """After the app folder moved (a portable copy), point the environment at the new one."""
    stamp = Stamp.read(plan.runtime.env)
    if stamp is not None and stamp.app_dir != str(plan.app_dir):
        write_app_pth(plan.runtime.env, plan.app_dir)
        Stamp(**{**asdict(stamp), "app_dir": str(plan.app_dir)}).write(plan.runtime.env)
