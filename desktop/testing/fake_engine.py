"""A scripted stand-in for `python -m engine`: speaks the protocol, computes nothing.

    python -m desktop.testing.fake_engine BEHAVIOUR [--runs FILE] [--until N] [--steps N]
        [--step-s S] [--delay S] [--models NAME=STATUS,...] [--tcp --token T]

`fake_engine_argv(BEHAVIOUR, *OPTIONS)` is that command line, for `EngineClient.spawn` or
`AppController.start`: the desktop's tests and benchmarks drive the real client with it.

Behaviours (they apply while this is run number <= --until of the --runs counter file, so a
restarted engine behaves normally; without --runs, always):
  normal            hello, models and model_action "list" (--models, by default DreamClear
                    installed) and "download" (done at once), restore jobs of --steps steps,
                    cancel, interrupt, shutdown
  crash             exits with code 3 in the middle of a job's second step
  ignore_interrupt  takes no notice of `interrupt`
  wrong_version     refuses `hello` with an error of kind "version"
  slow              answers `models` after --delay seconds
  exit_after_hello  exits with code 3 shortly after answering `hello`
  stubborn          ignores `shutdown`, the end of its input and SIGTERM (only SIGKILL ends it)
  older             an engine from before the restore options added within protocol version 1
                    (`ADDED_OPTIONS`): lists none of their capabilities and, as its strict
                    decoder did, refuses a `restore` carrying one as an unknown field

`train` (capability "train") runs one job of --steps steps (or the request's max_steps) in
stage "train", the label "Training step S/N, loss L", its result the folder `export` beside
the config; an interrupted run remembers its step, and a `train` of the same config with
`resume` goes on from there. A config whose name starts with "bad" fails with kind
"bad_setting"; an empty `config` is refused with that kind.

Job ids are "e1", "e2"... per process, so a restarted engine reuses them. An input whose
name starts with "bad" fails with kind "bad_input"; a job naming a model that --models does
not list as installed fails with kind "model_missing"; a `restore` without an output folder is
refused with kind "bad_setting". Each step sends progress as protocol 2 has it (the whole
job's `fraction`, a `label`, an ETA) and a `preview` (a copy of the input, beside where the
result would go; none with --no-previews). Results get free names (`NAME_x4.png`, `NAME_x4-2.png`...) as the real
engine's do; nothing is written but the previews. With --tcp it listens on 127.0.0.1 (a free
port, printed as "listening PORT" on stdout) and wants --token in `hello`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from engine import protocol as p

log = logging.getLogger("fake_engine")


def fake_engine_argv(behaviour: str = "normal", *options: str) -> list[str]:
    """The command that starts this fake engine with `behaviour` and `options` (see above)."""
    return [sys.executable, "-m", "desktop.testing.fake_engine", behaviour, *options]


@dataclass
class Job:
    id: str
    input: str
    output_dir: str
    steps: int
    skip_existing: bool = False
    upscale: int = 4
    model: str = "auto"
    kind: str = "restore"
    """"restore" or "train" (its input: the config)."""
    resume: bool = True


@dataclass
class FakeEngine:
    behaviour: str
    steps: int
    step_s: float
    delay_s: float
    token: str | None
    run: int
    models: list[dict[str, str]] = field(default_factory=list)
    previews: bool = True
    send: object = None
    queue: list[Job] = field(default_factory=list)
    running: Job | None = None
    interrupted: bool = False
    job_ids: int = 0
    said_hello: bool = False
    outputs: set[str] = field(default_factory=set)
    """Results named so far: the next of the same photo gets a free name."""
    trained: dict[str, int] = field(default_factory=dict)
    """The step each training config reached (what `resume` continues from)."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def emit(self, event: p.Event) -> None:
        self.send(p.encode(event))  # type: ignore[operator]

    async def handle(self, line: bytes) -> bool:
        """Answer one request; False when the engine should exit."""
        if self.behaviour == "older" and (refusal := older_refusal(line)):
            self.emit(refusal)
            return True
        try:
            request = p.decode(line, p.REQUESTS)
        except p.ProtocolError as error:
            self.emit(p.Error(kind=error.kind, message=str(error)))
            return True
        if not self.said_hello:
            return self.hello(request)
        lists_models = isinstance(request, p.ListModels) or (
            isinstance(request, p.ModelAction) and request.action == "list"
        )
        if lists_models:
            if self.behaviour == "slow":
                await asyncio.sleep(self.delay_s)
            self.emit(p.ModelsReply(request_id=request.id, models=self.models))
        elif isinstance(request, p.ModelAction) and request.action == "download":
            self.download(request)
        elif isinstance(request, p.Restore):
            options = json.loads(line)["options"]
            log.info("restore options as sent: %s", json.dumps(options, sort_keys=True))
            self.restore(request)
        elif isinstance(request, p.Train):
            self.train(request)
        elif isinstance(request, p.Cancel):
            for job in list(self.queue):
                if request.job_ids is None or job.id in request.job_ids:
                    self.queue.remove(job)
                    self.emit(p.Cancelled(request_id=request.id, job_id=job.id, reason="cancel"))
        elif isinstance(request, p.Interrupt):
            running = self.running
            wanted = request.job_id in (None, running.id if running else None)
            if running and wanted and self.behaviour != "ignore_interrupt":
                self.interrupted = True
        elif isinstance(request, p.Shutdown) and self.behaviour != "stubborn":
            for job in [*([self.running] if self.running else []), *self.queue]:
                self.emit(p.Cancelled(job_id=job.id, reason="shutdown"))
            self.emit(p.Bye(request_id=request.id))
            return False
        return True

    def download(self, request: p.ModelAction) -> None:
        """A download of one 200-byte file: half of it, then all of it, at once."""
        name = request.name or ""
        for done in (100, 200):
            self.emit(
                p.ModelProgress(
                    request_id=request.id,
                    name=name,
                    file="weights",
                    done_bytes=done,
                    total_bytes=200,
                )
            )
        self.emit(p.ModelDone(request_id=request.id, action="download", name=name))

    def hello(self, request: p.Request) -> bool:
        if not isinstance(request, p.Hello):
            self.emit(p.Error(request_id=request.id, kind="protocol", message="hello first"))
            return True
        if self.behaviour == "wrong_version":
            message = f"this engine speaks protocol 99, the client {request.protocol}"
            self.emit(p.Error(request_id=request.id, kind="version", message=message))
            return True
        if self.token is not None and request.token != self.token:
            self.emit(p.Error(request_id=request.id, kind="unauthorized", message="bad token"))
            return True
        self.said_hello = True
        self.emit(
            p.HelloReply(
                request_id=request.id,
                engine_version=f"fake-{self.behaviour}-run{self.run}",
                capabilities=[
                    "restore",
                    "models",
                    "cancel",
                    "interrupt",
                    *(("train", *p.ADDED_OPTIONS) if self.behaviour != "older" else ()),
                ],
                device="cpu",
            )
        )
        if self.behaviour == "exit_after_hello":
            asyncio.get_running_loop().call_later(0.2, os._exit, 3)
        return True

    def restore(self, request: p.Restore) -> None:
        if not request.output_dir:
            hint = "name a folder for results"
            message = "restore needs an output_dir"
            self.emit(
                p.Error(request_id=request.id, kind="bad_setting", message=message, hint=hint)
            )
            return
        jobs = []
        for path in request.inputs:
            self.job_ids += 1
            job = Job(
                f"e{self.job_ids}",
                path,
                request.output_dir,
                self.steps,
                request.options.skip_existing,
                request.options.upscale,
                request.options.model,
            )
            jobs.append(job)
            self.emit(p.Accepted(request_id=request.id, job_id=job.id, input=path))
        for job in jobs:
            ahead = len(self.queue) + (1 if self.running else 0)
            self.queue.append(job)
            self.emit(p.Queued(job_id=job.id, position=ahead))
        self.wake.set()

    def train(self, request: p.Train) -> None:
        if not request.config:
            message, hint = "train needs a config", "name a training TOML in `config`"
            self.emit(
                p.Error(request_id=request.id, kind="bad_setting", message=message, hint=hint)
            )
            return
        self.job_ids += 1
        steps = request.max_steps or self.steps
        job = Job(f"e{self.job_ids}", request.config, "", steps, kind="train")
        job.resume = request.resume
        self.emit(p.Accepted(request_id=request.id, job_id=job.id, input=job.input))
        self.emit(p.Queued(job_id=job.id, position=len(self.queue) + (1 if self.running else 0)))
        self.queue.append(job)
        self.wake.set()

    async def step(self, job: Job, step: int, stage: p.Stage, label: str) -> bool:
        """One scripted step and its progress; False (after `cancelled`) when interrupted. The
        "crash" behaviour exits in the middle of a job's second step."""
        if step == 2 and self.behaviour == "crash":
            await asyncio.sleep(self.step_s / 2)
            log.error("fake engine: crashing in job %s", job.id)
            os._exit(3)
        await asyncio.sleep(self.step_s)
        if self.interrupted:
            self.emit(p.Cancelled(job_id=job.id, reason="interrupt"))
            return False
        self.emit(
            p.Progress(
                job_id=job.id,
                stage=stage,
                step=step,
                steps=job.steps,
                fraction=step / job.steps,
                label=label,
                eta_s=(job.steps - step) * self.step_s,
            )
        )
        return True

    async def run_train(self, job: Job) -> None:
        self.emit(p.Started(job_id=job.id, input=job.input))
        self.emit(p.StageEvent(job_id=job.id, stage="load"))
        if Path(job.input).name.startswith("bad"):
            message = "Config field 'optimisation.learning_rat' is not a field."
            hint = "fix the config"
            self.emit(p.Error(job_id=job.id, kind="bad_setting", message=message, hint=hint))
            return
        self.emit(p.StageEvent(job_id=job.id, stage="train"))
        first = self.trained.get(job.input, 0) + 1 if job.resume else 1
        for step in range(first, job.steps + 1):
            label = f"Training step {step}/{job.steps}, loss {1.0 / (step + 1):.4g}"
            if not await self.step(job, step, "train", label):
                return
            self.trained[job.input] = step
        output = str(Path(job.input).parent / "export")
        self.emit(p.Result(job_id=job.id, input=job.input, output=output, seconds=0.1))

    async def work(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.queue:
                self.running = job = self.queue.pop(0)
                self.interrupted = False
                await self.run_job(job)
                self.running = None

    def output_name(self, job: Job) -> str:
        stem = f"{Path(job.input).stem}_x{job.upscale}"
        name, n = Path(job.output_dir) / f"{stem}.png", 1
        while str(name) in self.outputs:
            n += 1
            name = Path(job.output_dir) / f"{stem}-{n}.png"
        return str(name)

    def missing_model(self, job: Job) -> p.Error | None:
        installed = {m["name"] for m in self.models if m["status"] == "installed"}
        if job.model == "auto" or job.model in installed:
            return None
        message = f"the model {job.model!r} is not installed"
        hint = "get it in Engine › Models…, or choose an installed model"
        return p.Error(job_id=job.id, kind="model_missing", message=message, hint=hint)

    def preview(self, job: Job) -> p.Preview | None:
        """A copy of the input as the result so far (None if it cannot be read)."""
        from PIL import Image  # only for the final size; the fake computes nothing

        path = Path(job.output_dir) / f".{Path(job.input).stem}.preview.png"
        try:
            with Image.open(job.input) as image:
                width, height = image.size
                image.save(path)
        except OSError:
            return None
        width, height = width * job.upscale, height * job.upscale
        return p.Preview(job_id=job.id, path=str(path), width=width, height=height)

    async def run_job(self, job: Job) -> None:
        if job.kind == "train":
            await self.run_train(job)
            return
        output = str(Path(job.output_dir) / f"{Path(job.input).stem}_x{job.upscale}.png")
        if job.skip_existing and Path(output).is_file():
            self.emit(p.Started(job_id=job.id, input=job.input))
            self.emit(p.Result(job_id=job.id, input=job.input, output=output, skipped=True))
            return
        self.emit(p.Started(job_id=job.id, input=job.input))
        if Path(job.input).name.startswith("bad"):
            self.emit(p.Error(job_id=job.id, kind="bad_input", message="cannot read", hint="fix"))
            return
        if missing := self.missing_model(job):
            self.emit(missing)
            return
        self.emit(p.StageEvent(job_id=job.id, stage="denoise"))
        for step in range(1, job.steps + 1):
            if not await self.step(job, step, "denoise", f"Denoising {step}/{job.steps}"):
                return
            if self.previews and (preview := self.preview(job)):
                self.emit(preview)
        output = self.output_name(job)
        self.outputs.add(output)
        timings = {"load": 0.04, "denoise": 0.06}
        self.emit(
            p.Result(job_id=job.id, input=job.input, output=output, seconds=0.1, timings=timings)
        )


def older_refusal(line: bytes) -> p.Error | None:
    """What an older engine answers a request carrying a restore option it does not know."""
    try:
        payload = json.loads(line)
        added = sorted(set(payload.get("options") or {}) & set(p.ADDED_OPTIONS))
    except (ValueError, AttributeError, TypeError):
        return None  # not a restore: the real decoder answers it
    if not added:
        return None
    message = f"RestoreOptionsMessage: unknown field(s) {', '.join(added)}"
    return p.Error(request_id=payload.get("id"), kind="protocol", message=message)


def count_run(runs_file: str | None) -> int:
    if runs_file is None:
        return 1
    path = Path(runs_file)
    run = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(run))
    return run


async def serve_stdio(engine: FakeEngine) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=p.MAX_MESSAGE_BYTES + 1)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer

    def send(data: bytes) -> None:
        out.write(data)
        out.flush()

    engine.send = send
    worker = asyncio.create_task(engine.work())
    while line := await reader.readline():
        if not await engine.handle(line):
            break
    worker.cancel()
    if engine.behaviour == "stubborn":
        await asyncio.Event().wait()


async def serve_tcp(engine: FakeEngine) -> None:
    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        engine.send = writer.write
        engine.said_hello = False
        worker = asyncio.create_task(engine.work())
        try:
            while line := await reader.readline():
                if not await engine.handle(line):
                    await writer.drain()
                    os._exit(0)
        finally:
            worker.cancel()
            engine.queue.clear()
            writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"listening {port}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("behaviour")
    parser.add_argument("--runs")
    parser.add_argument("--until", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--step-s", type=float, default=0.02)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--models", default="dreamclear=installed")
    parser.add_argument("--tcp", action="store_true")
    parser.add_argument("--no-previews", action="store_true", help="send no preview events")
    parser.add_argument("--token")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    run = count_run(args.runs)
    behaviour = args.behaviour if args.runs is None or run <= args.until else "normal"
    log.info("fake engine run %d: %s", run, behaviour)
    if behaviour == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    models = [
        dict(zip(("name", "status"), m.split("="), strict=True)) for m in args.models.split(",")
    ]
    engine = FakeEngine(
        behaviour,
        args.steps,
        args.step_s,
        args.delay,
        args.token,
        run,
        models=models,
        previews=not args.no_previews,
    )
    asyncio.run(serve_tcp(engine) if args.tcp else serve_stdio(engine))


if __name__ == "__main__":
    main()
