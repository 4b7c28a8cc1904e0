"""`dreamclear restore --engine HOST:PORT`: send the jobs to a running engine, show the same
progress bar and summary as a local run. Torch-free: only the protocol and a socket.

Input paths are the engine's: they are sent made absolute when they exist here (the usual
case, an engine on this machine or a shared disk), as given otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from engine import protocol as p
from engine.cli.common import print_error
from engine.cli.restore_options import options_message_from_args
from engine.cli.restore_progress import FileOutcome, StepProgress, report_outcome, summarise
from engine.errors import EngineError

CONNECT_TIMEOUT_S = 10.0


class EngineLink:
    """A blocking JSON-lines connection to an engine."""

    def __init__(self, address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise EngineError(
                f"--engine {address!r} is not HOST:PORT", hint="e.g. --engine 127.0.0.1:7420"
            )
        try:
            self.socket = socket.create_connection((host.strip("[]"), int(port)), timeout)
        except OSError as error:
            raise EngineError(
                f"cannot reach the engine at {address}: {error.strerror or error}",
                hint="start it with `dreamclear engine serve`, or check the SSH tunnel",
            ) from None
        self.socket.settimeout(None)
        self.lines = self.socket.makefile("rb")
        self.ids = 0

    def send(self, request: p.Request) -> str:
        self.ids += 1
        request.id = request.id or f"cli-{self.ids}"
        try:
            self.socket.sendall(p.encode(request))
        except OSError as error:
            raise _lost(error) from None
        return request.id

    def receive(self) -> p.Event:
        """The next event; EngineError (never a traceback) when the engine went away or sent
        something that is not an event."""
        try:
            line = self.lines.readline(p.MAX_MESSAGE_BYTES + 1)
        except OSError as error:
            raise _lost(error) from None
        if not line:
            raise EngineError("the engine closed the connection", hint="see the engine's log")
        if not line.endswith(b"\n"):
            raise EngineError(
                "the engine closed the connection in the middle of a message",
                hint="it may have crashed: see the engine's log, then run this again",
            )
        try:
            return p.decode(line, p.EVENTS)
        except p.ProtocolError as error:
            raise EngineError(
                f"the engine sent a message this client cannot read: {error}",
                hint="use the same DreamClear Studio release on both sides",
            ) from None

    def close(self) -> None:
        self.lines.close()
        self.socket.close()


def _lost(error: OSError) -> EngineError:
    return EngineError(
        f"lost the connection to the engine: {error.strerror or error}",
        hint="it may have crashed or been stopped: see the engine's log, then run this again",
    )


def restore_message(args: argparse.Namespace) -> p.Restore:
    inputs = [str(Path(i).resolve()) if Path(i).exists() else i for i in args.inputs]
    output = Path(args.output).expanduser()
    options = options_message_from_args(args)
    return p.Restore(
        inputs=inputs,
        output_dir=str(output.resolve() if output.is_absolute() or output.exists() else output),
        options=options,
    )


def check_engine_takes(options: p.RestoreOptionsMessage, reply: p.HelloReply, address: str) -> None:
    """Refuse, before sending, options an older engine cannot read (docs/protocol.md,
    "Versioning"); left at their defaults they are not sent at all."""
    unsupported = p.unsupported_options(options, reply.capabilities)
    if unsupported:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in unsupported)
        raise EngineError(
            f"the engine at {address} ({reply.engine_version or 'version unknown'}) is older "
            f"than this dreamclear and cannot take {flags}",
            hint=f"update the engine there, or leave out {flags}",
        )


def run_remote_restore(args: argparse.Namespace, stream: TextIO) -> int:
    try:
        link = EngineLink(args.engine)
    except EngineError as error:
        print_error(error, stream)
        return 2
    try:
        return _run(link, args, stream)
    except EngineError as error:
        print_error(error, stream)
        return 2
    finally:
        link.close()


def _run(link: EngineLink, args: argparse.Namespace, stream: TextIO) -> int:
    link.send(p.Hello(token=args.token, client="dreamclear restore"))
    reply = link.receive()
    if isinstance(reply, p.Error):
        raise EngineError(reply.message, reply.hint)
    request = restore_message(args)
    if isinstance(reply, p.HelloReply):
        check_engine_takes(request.options, reply, args.engine)
    request_id = link.send(request)
    pending: set[str] = set()
    accepted = False
    outcomes: list[FileOutcome] = []
    bars: dict[str, StepProgress] = {}
    inputs: dict[str, str] = {}
    files_bar: tqdm | None = None
    try:
        while not accepted or pending:
            event = link.receive()
            job_id = getattr(event, "job_id", None)
            if isinstance(event, p.Error) and job_id is None:
                if event.request_id == request_id:
                    raise EngineError(event.message, event.hint)
                tqdm.write(f"warning: engine: {event.message}", file=stream)
            elif isinstance(event, p.Accepted):
                pending.add(event.job_id)
                inputs[event.job_id] = event.input
            elif isinstance(event, p.Queued):
                accepted = True
            elif isinstance(event, p.Started):
                if files_bar is None:
                    files_bar = tqdm(
                        total=len(inputs),
                        desc="files",
                        unit="file",
                        file=stream,
                        dynamic_ncols=True,
                    )
                bars[job_id] = StepProgress(Path(event.input).name, stream)
            elif isinstance(event, p.StageEvent) and job_id in bars:
                bars[job_id].enter(event.stage)
            elif isinstance(event, p.Progress) and job_id in bars:
                bars[job_id].show_event(event)
            elif isinstance(event, p.Warning):
                tqdm.write(f"warning: {event.message}", file=stream)
            elif isinstance(event, p.Result | p.Error | p.Cancelled) and job_id in pending:
                pending.discard(job_id)
                if job_id in bars:
                    bars.pop(job_id).close()
                if files_bar is not None:
                    files_bar.update(1)
                outcome = _outcome(event, inputs[job_id])
                report_outcome(outcome, stream)
                outcomes.append(outcome)
    except KeyboardInterrupt:
        with contextlib.suppress(EngineError):  # the engine may be gone already
            link.send(p.Cancel())
            link.send(p.Interrupt())
        stream.write("interrupted: no partial result was written for the file in progress\n")
        return 130
    finally:
        for bar in bars.values():
            bar.close()
        if files_bar is not None:
            files_bar.close()
    return summarise(outcomes, stream)


def _outcome(event: p.Event, input_path: str) -> FileOutcome:
    if isinstance(event, p.Result):
        return FileOutcome(input_path, event.output, event.seconds, skipped=event.skipped)
    if isinstance(event, p.Error):
        error = f"{event.message} ({event.hint})" if event.hint else event.message
    else:
        error = f"{input_path}: cancelled ({event.reason})"
    return FileOutcome(input_path, error=error)
