"""`dreamclear bench engine`: how quickly the engine process answers, with the tiny model.

Measured against a real `python -m engine --stdio` subprocess:

- start to hello: from spawning the process to receiving `hello_reply` (fresh process each);
- callback to client: from the pipeline's progress callback (the engine logs its
  `time.monotonic()` at debug level) to this process reading the event (same clock: Linux's
  CLOCK_MONOTONIC is system-wide);
- interrupt to cancelled: from sending `interrupt` during denoising to reading `cancelled`;
  and the same for the bundled starter restoring a 2048 px output (256 px x 8), sent after
  its first, second, ... restorer tile;
- events per second at the throttle: `ProgressThrottle` flooded with callbacks for a second;
- resident memory of the idle engine, after hello and after a job (model loaded).
"""

from __future__ import annotations

import json
import os
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine import protocol as p

LOG_LINE = re.compile(
    r"progress job=(\w+) stage=(\w+) step=(\d+) tile=(\d+) called=([0-9.]+) sent=([0-9.]+)"
)


@dataclass
class EngineBench:
    start_to_hello_s: list[float] = field(default_factory=list)
    callback_to_client_ms: list[float] = field(default_factory=list)
    """Includes the wait of a position held back by the throttle (latest wins)."""
    sent_to_client_ms: list[float] = field(default_factory=list)
    """From the throttle letting the event go to the client reading it: the transport."""
    interrupt_to_cancelled_ms: list[float] = field(default_factory=list)
    starter_interrupt_to_cancelled_ms: list[float] = field(default_factory=list)
    """Empty when the bundled starter is not installed."""
    throttle_events_per_s: float = 0.0
    idle_rss_bytes: int = 0
    loaded_rss_bytes: int = 0


class _Engine:
    def __init__(self, store: Path, log: Path) -> None:
        self.log = log
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine",
                "--stdio",
                "--store",
                str(store),
                "--log-level",
                "debug",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("wb"),
        )
        self.events: queue.Queue[tuple[float, dict]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.events.put((time.monotonic(), json.loads(line)))

    def send(self, message: p.Request) -> float:
        self.process.stdin.write(p.encode(message))
        self.process.stdin.flush()
        return time.monotonic()

    def until(self, predicate, timeout: float = 300.0) -> list[tuple[float, dict]]:
        seen = []
        while True:
            item = self.events.get(timeout=timeout)
            seen.append(item)
            if predicate(item[1]):
                return seen

    def rss(self) -> int:
        import psutil

        return psutil.Process(self.process.pid).memory_info().rss

    def stop(self) -> None:
        self.send(p.Shutdown(id="bye"))
        self.until(lambda e: e["type"] == "bye")
        self.process.wait(30)


def _photo(path: Path, size: int = 16) -> Path:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(path)
    return path


def _throttle_rate(seconds: float = 1.0) -> float:
    from engine.pipelines.stage_plan import dreamclear_plan
    from engine.progress import JobProgress

    sent: list[p.Event] = []
    throttle = JobProgress("bench", None, sent.append)
    plan = dreamclear_plan(10**9, captions=False)
    end = time.monotonic() + seconds
    step = 0
    while time.monotonic() < end:
        step += 1
        throttle(plan.info("denoise", step, 10**9))
    throttle.discard()
    return sum(isinstance(e, p.Progress) for e in sent) / seconds


def run(*, starts: int = 3, steps: int = 40, interrupts: int = 5) -> EngineBench:
    from engine.models.tiny_components import build_tiny_components
    from engine.weights.components_io import save_components

    bench = EngineBench()
    work = Path(tempfile.mkdtemp(prefix="dreamclear-bench-engine-"))
    model = work / "tiny"
    save_components(build_tiny_components(seed=0), model)
    photo = _photo(work / "photo.png")
    options = p.RestoreOptionsMessage(model=str(model), steps=steps, upscale=2, seed=0)

    # 1. start to hello, fresh processes
    for index in range(starts):
        engine = _Engine(work / "store", work / f"start-{index}.log")
        engine.send(p.Hello(id="h"))
        received, _ = engine.until(lambda e: e["type"] == "hello_reply")[-1]
        bench.start_to_hello_s.append(received - engine.started)
        if index < starts - 1:
            engine.stop()

    # 2. idle memory, then one job: callback-to-client latency and the event rate
    time.sleep(3.0)  # the engine imports the model code after hello; let it settle
    bench.idle_rss_bytes = engine.rss()
    engine.send(
        p.Restore(id="job", inputs=[str(photo)], output_dir=str(work / "out"), options=options)
    )
    seen = engine.until(lambda e: e["type"] in {"result", "error"})
    bench.loaded_rss_bytes = engine.rss()
    called = {}
    for match in LOG_LINE.finditer(engine.log.read_text(errors="replace")):
        job, stage, step, tile, when, sent = match.groups()
        called[(job, stage, int(step), int(tile))] = (float(when), float(sent))
    for received, event in seen:
        if event["type"] != "progress":
            continue
        key = (event["job_id"], event["stage"], event["step"], event["tile"])
        if key in called:
            bench.callback_to_client_ms.append((received - called[key][0]) * 1000)
            bench.sent_to_client_ms.append((received - called[key][1]) * 1000)

    # 3. interrupt to cancelled
    long_options = p.RestoreOptionsMessage(model=str(model), steps=500, upscale=2, seed=0)
    for index in range(interrupts):
        engine.send(
            p.Restore(
                id=f"long-{index}",
                inputs=[str(photo)],
                output_dir=str(work / "out"),
                options=long_options,
            )
        )
        engine.until(lambda e: e["type"] == "progress" and e["stage"] == "denoise")
        asked = engine.send(p.Interrupt(id=f"stop-{index}"))
        received, _ = engine.until(lambda e: e["type"] == "cancelled")[-1]
        bench.interrupt_to_cancelled_ms.append((received - asked) * 1000)
    _interrupt_starter(engine, bench, _photo(work / "big.png", 256), work / "out", interrupts)
    engine.stop()

    # 4. the throttle itself, flooded
    bench.throttle_events_per_s = _throttle_rate()
    return bench


def _interrupt_starter(
    engine: _Engine, bench: EngineBench, photo: Path, out: Path, interrupts: int
) -> None:
    """Interrupt the bundled starter after its first, second, ... restorer tile."""
    from engine.weights.starter_io import starter_available

    if not starter_available():
        return
    options = p.RestoreOptionsMessage(model="starter", upscale=8)
    for index in range(interrupts):
        engine.send(
            p.Restore(
                id=f"starter-{index}", inputs=[str(photo)], output_dir=str(out), options=options
            )
        )
        engine.until(
            lambda e, tile=index + 1: (
                e["type"] == "progress" and e["stage"] == "remove" and e["tile"] >= tile
            )
        )
        asked = engine.send(p.Interrupt(id=f"stop-starter-{index}"))
        received, _ = engine.until(lambda e: e["type"] == "cancelled")[-1]
        bench.starter_interrupt_to_cancelled_ms.append((received - asked) * 1000)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def format_report(bench: EngineBench) -> str:
    latency = bench.callback_to_client_ms
    stops = bench.interrupt_to_cancelled_ms
    starter = bench.starter_interrupt_to_cancelled_ms
    rows = [
        (
            f"engine start to hello reply (median of {len(bench.start_to_hello_s)})",
            f"{statistics.median(bench.start_to_hello_s):.2f} s",
        ),
        (
            f"progress callback to client, median / p99 ({len(latency)} events)",
            f"{statistics.median(latency):.2f} ms / {_percentile(latency, 0.99):.2f} ms"
            if latency
            else "n/a",
        ),
        (
            f"throttle release to client, median / p99 ({len(bench.sent_to_client_ms)} events)",
            f"{statistics.median(bench.sent_to_client_ms):.2f} ms / "
            f"{_percentile(bench.sent_to_client_ms, 0.99):.2f} ms"
            if latency
            else "n/a",
        ),
        (
            f"interrupt to cancelled, median / max ({len(stops)} runs)",
            f"{statistics.median(stops):.0f} ms / {max(stops):.0f} ms" if stops else "n/a",
        ),
        (
            f"interrupt to cancelled, starter 2048 px, median / max ({len(starter)} runs)",
            f"{statistics.median(starter):.0f} ms / {max(starter):.0f} ms"
            if starter
            else "n/a (no bundled starter)",
        ),
        ("progress events per second, throttle flooded", f"{bench.throttle_events_per_s:.1f}"),
        ("idle engine resident memory", f"{bench.idle_rss_bytes / 2**20:.0f} MiB"),
        ("after one job (tiny model loaded)", f"{bench.loaded_rss_bytes / 2**20:.0f} MiB"),
    ]
    lines = ["| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines.append(f"\n(cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f})")
    return "\n".join(lines)
