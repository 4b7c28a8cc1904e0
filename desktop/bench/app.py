"""Start-up time, event-loop latency under engine progress, and memory of the desktop app.

    python -m desktop.bench.app [--launches 3] [--seconds 5] [--flood-hz 500]

Engine-free: the app drives the scripted fake engine (desktop.testing.fake_engine) through
the real EngineClient, pipes and JSON included. Every measurement runs in a fresh
process (`--child KIND`, one JSON line on stdout) on the offscreen platform, with temp
QSettings, so nothing of the user's is read or written. Prints a markdown table.

- launch: process start (the parent's clock just before it starts the child) to the end of the
  main window's first paint, and to the fake engine's hello; the median of `--launches` runs.
- latency: a 5 ms single-shot QTimer, re-armed on every fire, records how late it fires while
  one job streams progress (20 Hz as the engine throttles it, then a flood) into the queue row.
- memory: RSS with ten finished 2304x1728 (4 MP) results in the queue and the last one in the
  compare view, then after showing each of them in turn (Linux: /proc/self/status).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from desktop.testing.fake_engine import fake_engine_argv

RESULTS = 10
RESULT_SIZE = (2304, 1728)
TICK_MS = 5


# --- child processes -----------------------------------------------------------------------


def fake_engine(steps: int = 3, step_s: float = 0.01) -> list[str]:
    return fake_engine_argv("normal", "--steps", str(steps), "--step-s", str(step_s))


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MiB."""
    fields = dict(
        line.split(":", 1)
        for line in Path("/proc/self/status").read_text().splitlines()
        if ":" in line
    )
    return tuple(int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


async def open_app(workdir: Path, engine_argv: list[str]):
    """The app as `desktop.app.run_app` builds it, with temp settings and the fake engine."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from desktop.client import EngineClient
    from desktop.state import AppController, SettingsModel
    from desktop.ui.main_window import MainWindow
    from desktop.ui.theme import follow_system

    follow_system(QApplication.instance())
    ini = QSettings.Format.IniFormat
    settings = SettingsModel(QSettings(str(workdir / "settings.ini"), ini))
    settings.set_value("output_dir", str(workdir / "out"))
    settings.set_auto_start(True)  # it measures jobs that run, not the start button
    controller = AppController(EngineClient, settings, data_dir=workdir / "data")
    window = MainWindow(controller, QSettings(str(workdir / "ui.ini"), ini))
    window.show()
    started = controller.start(engine_argv)
    return controller, window, started


async def wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the app")
        await asyncio.sleep(0.01)


async def child_launch(workdir: Path) -> dict[str, float]:
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QWidget

    times = {"loop": time.monotonic()}
    painted = asyncio.get_running_loop().create_future()

    class FirstPaint(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if (
                event.type() == QEvent.Type.Paint
                and isinstance(obj, QWidget)
                and not painted.done()
            ):
                # Marked once the whole paint pass (this event and its siblings) is done.
                QTimer.singleShot(0, lambda: painted.done() or painted.set_result(time.monotonic()))
            return False

    first_paint = FirstPaint()
    QApplication.instance().installEventFilter(first_paint)
    controller, _window, started = await open_app(workdir, fake_engine())
    times["shown"] = await painted
    await started
    times["engine_ready"] = time.monotonic()
    QApplication.instance().removeEventFilter(first_paint)
    await controller.close()
    return times


def make_input(path: Path) -> None:
    from PySide6.QtCore import QSize

    from desktop.bench.compare import pattern_image

    pattern_image(QSize(64, 48)).save(str(path))


async def child_latency(workdir: Path, hz: float, seconds: float) -> dict[str, Any]:
    """Lateness of a 5 ms timer for `seconds` while one job streams `hz` progress events
    (0: an idle app). The job has steps to spare; closing the app interrupts it."""
    from PySide6.QtCore import Qt, QTimer

    from engine import protocol as p

    steps = max(int(hz * seconds * 4), 1)
    controller, window, started = await open_app(
        workdir, fake_engine(steps, 1 / hz if hz else 0.01)
    )
    await started
    received: list[float] = []
    controller.client.subscribe(
        lambda event: received.append(time.monotonic()) if isinstance(event, p.Progress) else None
    )
    late_ms: list[float] = []
    timer = QTimer()
    timer.setSingleShot(True)
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    armed = [0.0]

    def fire() -> None:
        now = time.perf_counter()
        late_ms.append((now - armed[0]) * 1e3 - TICK_MS)
        armed[0] = now
        timer.start(TICK_MS)

    timer.timeout.connect(fire)
    if hz:
        make_input(workdir / "in.png")
        (job,) = controller.add_paths([workdir / "in.png"])
        await wait_for(lambda: job.state == "running" and job.step > 0)
    began = time.monotonic()
    armed[0] = time.perf_counter()
    timer.start(TICK_MS)
    await asyncio.sleep(seconds)
    timer.stop()
    events = sum(1 for t in received if t >= began)
    await controller.close()
    window.close()
    late_ms.sort()
    return {
        "events_per_s": events / seconds,
        "ticks": len(late_ms),
        "p50_ms": statistics.median(late_ms),
        "p99_ms": late_ms[int(0.99 * (len(late_ms) - 1))],
        "max_ms": late_ms[-1],
    }


def make_results(folder: Path, out: Path) -> list[Path]:
    """Ten inputs (a quarter size) and, where the fake engine says it wrote them, their 4 MP
    results (`<stem>_x4.png`), each a little different."""
    from PySide6.QtCore import QSize, Qt
    from PySide6.QtGui import QColor, QPainter

    from desktop.bench.compare import pattern_image

    folder.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    base = pattern_image(QSize(*RESULT_SIZE))
    inputs = []
    for n in range(RESULTS):
        result = base.copy()
        painter = QPainter(result)
        painter.fillRect(100 * n, 100 * n, 400, 300, QColor.fromHsv(36 * n, 200, 220))
        painter.end()
        result.save(str(out / f"photo{n}_x4.png"), "PNG", 90)  # 90: light compression, fast
        small = result.scaled(result.size() / 4, mode=Qt.TransformationMode.SmoothTransformation)
        small.save(str(folder / f"photo{n}.png"), "PNG", 90)
        inputs.append(folder / f"photo{n}.png")
    return inputs


async def child_memory(workdir: Path) -> dict[str, float]:
    controller, window, started = await open_app(workdir, fake_engine())
    await started
    await asyncio.sleep(0.5)  # first paints, thumbnail thread
    empty = rss_mib()[0]
    controller.add_paths(sorted((workdir / "in").iterdir()))
    jobs = controller.jobs
    await wait_for(lambda: jobs.rowCount() == RESULTS and all(j.state == "done" for j in jobs.jobs))
    # The last result is shown (decoded off the GUI thread), its pyramid level built, painted.
    await wait_for(lambda: window.compare.canvas.after is not None and not window.compare.loading)
    await asyncio.sleep(0.5)
    ten = rss_mib()[0]
    rounds = []
    for _ in range(3):  # the same each round unless images are kept (a leak)
        for job in jobs.jobs:
            window.queue.select(job.id)
            await wait_for(lambda: not window.compare.loading)  # each shown, none skipped
            window.compare.canvas.repaint()
        await asyncio.sleep(0.5)
        rounds.append(rss_mib()[0])
    peak = max(rss_mib()[1], *rounds)  # VmHWM is updated lazily
    await controller.close()
    window.close()
    return {"empty": empty, "ten_results": ten, "each_shown": rounds, "peak": peak}


def run_child(kind: str, workdir: str, hz: float, seconds: float) -> None:
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    app.setOrganizationName("DreamClear")
    app.setApplicationName("DreamClear Studio bench")
    folder = Path(workdir)
    if kind == "launch":
        work = child_launch(folder)
    elif kind == "latency":
        work = child_latency(folder, hz, seconds)
    else:
        work = child_memory(folder)
    result = qasync.run(work)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


# --- the parent ----------------------------------------------------------------------------


def child(kind: str, workdir: Path, *extra: str) -> tuple[float, dict[str, Any]]:
    """Run one child; (monotonic time just before it started, its JSON answer)."""
    argv = [sys.executable, "-m", "desktop.bench.app", "--child", kind, "--workdir", str(workdir)]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1"}
    launched = time.monotonic()
    done = subprocess.run([*argv, *extra], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {kind} run failed:\n{done.stderr[-3000:]}")
    return launched, json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="per latency run")
    parser.add_argument(
        "--flood-hz", type=float, nargs="+", default=[500.0, 2000.0], help="flood rates asked for"
    )
    parser.add_argument("--child", choices=("launch", "latency", "memory"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--hz", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(args.child, args.workdir, args.hz, args.seconds)
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        root = Path(tmp)
        shown, ready = [], []
        for n in range(args.launches):
            launched, times = child("launch", root / f"launch{n}")
            shown.append((times["shown"] - launched) * 1e3)
            ready.append((times["engine_ready"] - launched) * 1e3)
        latency = {}
        rates = [("idle (no job)", 0.0), ("20 Hz (the engine's throttle)", 20.0)]
        rates += [(f"flood, {hz:g}/s asked", hz) for hz in args.flood_hz]
        for label, hz in rates:
            _, latency[label] = child(
                "latency", root / f"latency{hz:g}", "--hz", str(hz), "--seconds", str(args.seconds)
            )
        memory_dir = root / "memory"
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtGui import QGuiApplication

        app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
        make_results(memory_dir / "in", memory_dir / "out")
        del app
        _, memory = child("memory", memory_dir)

    print(f"launch to main window painted, ms ({args.launches} fresh processes)\n")
    print("| | median | runs |\n|---|---|---|")
    print(
        f"| window painted | {statistics.median(shown):.0f} | {', '.join(f'{t:.0f}' for t in shown)} |"
    )
    print(
        f"| fake engine ready | {statistics.median(ready):.0f} | {', '.join(f'{t:.0f}' for t in ready)} |"
    )
    print(f"\nevent-loop lateness of a {TICK_MS} ms timer, ms ({args.seconds:g} s each)\n")
    print(
        "| progress stream | events/s received | p50 | p99 | max | ticks |\n|---|---|---|---|---|---|"
    )
    for label, r in latency.items():
        print(
            f"| {label} | {r['events_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['max_ms']:.1f} | {r['ticks']} |"
        )
    print(f"\nresident memory, MiB ({RESULTS} results of {RESULT_SIZE[0]}x{RESULT_SIZE[1]})\n")
    print(
        "| window, engine ready, empty queue | ten results, last one shown "
        "| after showing each in turn: once, 3 times | peak |"
    )
    print("|---|---|---|---|")
    m = memory
    each = f"{m['each_shown'][0]:.0f}, {m['each_shown'][-1]:.0f}"
    print(f"| {m['empty']:.0f} | {m['ten_results']:.0f} | {each} | {m['peak']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
