"""The fake engine's scripted `train` (what the wizard tests drive): capability, progress in
stage "train", interrupt and resume from the step reached, a bad config's error."""

from __future__ import annotations

import json
import queue
import subprocess
import threading

from desktop.testing.fake_engine import fake_engine_argv
from engine import protocol as p


class FakeEngine:
    def __init__(self, *options: str) -> None:
        self.process = subprocess.Popen(
            fake_engine_argv("normal", *options),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.events: queue.Queue[p.Event] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.events.put(p.decode(line, p.EVENTS))

    def send(self, **message) -> None:
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def until(self, kinds: tuple[type, ...]) -> list[p.Event]:
        seen = []
        while not isinstance(seen[-1] if seen else None, kinds):
            seen.append(self.events.get(timeout=10))
        return seen

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


ENDINGS = (p.Result, p.Error, p.Cancelled)


def test_fake_train_progress_interrupt_resume_and_error(tmp_path):
    engine = FakeEngine("--steps", "1000", "--step-s", "0.01")
    try:
        engine.send(type="hello", id="h")
        (reply,) = engine.until((p.HelloReply,))
        assert "train" in reply.capabilities
        config = str(tmp_path / "train.toml")

        engine.send(type="train", id="t1", config=config)
        seen = engine.until((p.Progress,))
        assert [e.stage for e in seen if isinstance(e, p.StageEvent)] == ["load", "train"]
        assert seen[-1].label.startswith("Training step 1/1000, loss")
        engine.send(type="interrupt", id="i")
        events = engine.until(ENDINGS)
        assert isinstance(events[-1], p.Cancelled)
        reached = max(e.step for e in seen + events if isinstance(e, p.Progress))

        engine.send(type="train", id="t2", config=config, max_steps=reached + 2)
        events = engine.until(ENDINGS)
        steps = [e.step for e in events if isinstance(e, p.Progress)]
        assert steps == [reached + 1, reached + 2]
        assert events[-1].output == str(tmp_path / "export")

        engine.send(type="train", id="t3", config=str(tmp_path / "bad.toml"))
        error = engine.until(ENDINGS)[-1]
        assert isinstance(error, p.Error) and error.kind == "bad_setting"
    finally:
        engine.close()
