"""Time and peak memory of named stages, for the stage harness (engine/bench/stages.py).

A stage may be entered many times (the remover once per tile, a denoising step once per
step): each entry is one sample of its time, and its peak is the highest of its entries.
On CUDA the device is synchronised around every entry and the peak is
`torch.cuda.max_memory_allocated`, reset when an entry opens, so a stage's peak is its own
(the weights resident at the time included). On the CPU the peak is the process's resident
high-water mark (VmHWM), reset through /proc/self/clear_refs where Linux allows it; elsewhere
it is the process's peak so far, which the report then says.
"""

from __future__ import annotations

import contextlib
import functools
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass
class StageStat:
    seconds: list[float] = field(default_factory=list)
    """One entry per time the stage ran (per tile call or per step)."""
    peak_bytes: int = 0
    cpu_seconds: float = 0.0
    """This process's CPU time (all threads) in the stage: on a CPU shared with other work it
    counts the work done, where the wall time also counts the waiting."""

    @property
    def total(self) -> float:
        return sum(self.seconds)


def _status_kib(field_name: str) -> int | None:
    """A `VmHWM:`-style field of /proc/self/status in KiB, or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def resident_bytes() -> int:
    """The process's resident memory now (its peak so far where /proc is missing)."""
    kib = _status_kib("VmRSS")
    if kib is None:
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return kib * 1024


def reset_cpu_peak() -> bool:
    """Reset the resident high-water mark to the current RSS; False where that is impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_peak_bytes() -> int:
    kib = _status_kib("VmHWM")
    if kib is None:
        return resident_bytes()
    return kib * 1024


class AnonymousPeak:
    """Samples the process's anonymous (non-file) resident memory every few ms in a thread.

    File-backed pages of a memory-mapped safetensors file count in RSS too but are the page
    cache, shared and reclaimable; anonymous memory is what a copy of the weights would take.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            kib = _status_kib("RssAnon") or 0
            self.peak = max(self.peak, kib * 1024)
            self._stop.wait(self.interval)

    def __enter__(self) -> AnonymousPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, (_status_kib("RssAnon") or 0) * 1024)


class StageMeter:
    """Collects `StageStat`s by stage name on one device."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.stats: dict[str, StageStat] = {}
        self.peak_resets = True
        self._open: dict[str, float] = {}
        self._cpu_open: dict[str, float] = {}

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def open(self, stage: str) -> None:
        self._sync()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.peak_resets = reset_cpu_peak() and self.peak_resets
        self._open[stage] = time.perf_counter()
        self._cpu_open[stage] = time.process_time()

    def close(self, stage: str) -> None:
        self._sync()
        seconds = time.perf_counter() - self._open.pop(stage)
        peak = torch.cuda.max_memory_allocated(self.device) if self.cuda else cpu_peak_bytes()
        stat = self.stats.setdefault(stage, StageStat())
        stat.seconds.append(seconds)
        stat.cpu_seconds += time.process_time() - self._cpu_open.pop(stage)
        stat.peak_bytes = max(stat.peak_bytes, int(peak))

    def is_open(self, stage: str) -> bool:
        return stage in self._open

    @contextlib.contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        self.open(stage)
        try:
            yield
        finally:
            self.close(stage)

    def wrap(self, function: Callable[..., Any], stage: str) -> Callable[..., Any]:
        """`function`, each call measured as one entry of `stage`."""

        @functools.wraps(function)
        def measured(*args: Any, **kwargs: Any) -> Any:
            with self.measure(stage):
                return function(*args, **kwargs)

        return measured


@contextlib.contextmanager
def patched(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    """Set `owner.name` to `replacement` for the block (an instance or a module attribute)."""
    had_own = name in getattr(owner, "__dict__", {})
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        if had_own:
            setattr(owner, name, original)
        else:
            delattr(owner, name)
