"""Set-up progress: a small Tk window when there is a display, the terminal otherwise.

The environment has no Qt yet, so the window is Tk (in the standard library; Debian ships it
as python3-tk, which the package recommends). Without Tk or a display the terminal is used.
The work runs in a thread; Tk stays in the main thread, as it must.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Callable
from typing import Protocol


class Reporter(Protocol):
    def progress(self, words: str, fraction: float) -> None: ...
    def output(self, line: str) -> None: ...


class TerminalReporter:
    """Each step on its own line; uv's own output only when `verbose` (it is always logged)."""

    def __init__(self, verbose: bool = False) -> None:
        self.verbose = verbose

    def progress(self, words: str, fraction: float) -> None:
        print(f"[{fraction:4.0%}] {words}", file=sys.stderr, flush=True)

    def output(self, line: str) -> None:
        if self.verbose:
            print(f"       {line}", file=sys.stderr, flush=True)

    def run(self, work: Callable[[TerminalReporter], None]) -> None:
        work(self)


def has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class WindowReporter:
    """A window with the step, a bar and the last lines of uv's output."""

    def __init__(self, title: str) -> None:
        import tkinter
        from tkinter import ttk

        self._events: queue.Queue[tuple[str, object]] = queue.Queue()
        self.root = tkinter.Tk()
        self.root.title(title)
        self.root.geometry("560x260")
        self.words = tkinter.StringVar(value="Starting")
        ttk.Label(self.root, textvariable=self.words, padding=10).pack(fill="x")
        self.bar = ttk.Progressbar(self.root, maximum=1.0, length=520)
        self.bar.pack(padx=10, fill="x")
        self.lines = tkinter.Text(self.root, height=8, state="disabled", wrap="none")
        self.lines.pack(padx=10, pady=10, fill="both", expand=True)
        self.error: BaseException | None = None

    def progress(self, words: str, fraction: float) -> None:
        self._events.put(("progress", (words, fraction)))

    def output(self, line: str) -> None:
        self._events.put(("output", line))

    def _poll(self) -> None:
        while True:
            try:
                kind, value = self._events.get_nowait()
            except queue.Empty:
                break
            if kind == "progress":
                words, fraction = value  # type: ignore[misc]
                self.words.set(words)
                self.bar["value"] = fraction
            elif kind == "output":
                self.lines.configure(state="normal")
                self.lines.insert("end", f"{value}\n")
                self.lines.see("end")
                self.lines.configure(state="disabled")
            elif kind == "done":
                if self.error is None:
                    self.root.destroy()
                    return
                self.words.set(f"Set-up failed: {self.error}")
                self.root.protocol("WM_DELETE_WINDOW", self.root.destroy)
        self.root.after(100, self._poll)

    def run(self, work: Callable[[WindowReporter], None]) -> None:
        """Run WORK in a thread while the window shows its progress; re-raise its error after
        the user closed the window (which then stays open to show it)."""

        def body() -> None:
            try:
                work(self)
            except BaseException as error:
                self.error = error
            self._events.put(("done", None))

        threading.Thread(target=body, daemon=True).start()
        self.root.after(100, self._poll)
        self.root.mainloop()
        if self.error is not None:
            raise self.error


def make_reporter(window: bool, verbose: bool) -> TerminalReporter | WindowReporter:
    """A window when asked for and possible, else the terminal."""
    if window and has_display():
        try:
            return WindowReporter("DreamClear Studio: first-run set-up")
        except Exception:  # no tkinter, or Tk cannot open the display: the terminal will do
            pass
    return TerminalReporter(verbose)
