"""The engine protocol: versioned, torch-free message types and JSON-lines framing.

One schema for both sides (the desktop imports this module and nothing else of the engine).
Every message is one JSON object on one line, UTF-8, at most `MAX_MESSAGE_BYTES` long, with a
`type` field naming one of the dataclasses below. Requests go from the client to the engine
and carry an `id` the engine echoes as `request_id`; events go from the engine to the client.
Units are in the field docstrings. docs/protocol.md is the reference for people.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

PROTOCOL_VERSION = 2
"""Bumped on any incompatible change; `hello` refuses a client of another version.
2: `progress` says how far the whole job is (`fraction`, `label`) and `preview` is sent."""
MAX_MESSAGE_BYTES = 1 << 20
"""1 MiB: far above any real message, small enough that a runaway line cannot eat memory."""
MAX_ID_CHARS = 256
"""Longest request `id`: it is echoed in every answer, which must stay far below a message."""

Stage = Literal[
    "load",
    "remove",
    "caption",
    "encode",
    "denoise",
    "decode",
    "colour",
    "estimate",
    "save",
    "prompts",
    "pairs",
    "filter",
    "train",
    "finetune",
    "generate",
    "export",
]
ErrorKind = Literal[
    "bad_input",
    "output",
    "model_missing",
    "bad_checkpoint",
    "bad_setting",
    "out_of_memory",
    "protocol",
    "bad_request",
    "forbidden",
    "unauthorized",
    "version",
    "internal",
]


class ProtocolError(Exception):
    """A line that is not a valid message: "protocol" when it is not a message of a known type
    with known fields, "bad_request" when a field holds a value of the wrong type."""

    def __init__(self, message: str, kind: ErrorKind = "protocol") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Message:
    """Base of every message; `type` is the class's `TYPE`."""

    TYPE: ClassVar[str] = ""


# --- Requests (client -> engine) -------------------------------------------------------------


@dataclass
class Request(Message):
    id: str = ""
    """Chosen by the client; echoed in the events that answer this request."""


@dataclass
class Hello(Request):
    """First message on every connection. Anything else before it is refused."""

    TYPE: ClassVar[str] = "hello"
    protocol: int = PROTOCOL_VERSION
    token: str | None = None
    """Required by a TCP engine (printed at its start or given with --token); stdio needs none."""
    client: str = ""
    """Free text naming the client and its version, for the engine's log."""


@dataclass
class ListModels(Request):
    """Ask for the installed models and the device facts; answered by `models`."""

    TYPE: ClassVar[str] = "models"


@dataclass
class RestoreOptionsMessage:
    """The options of `dreamclear restore`, with the same defaults."""

    model: str = "auto"
    upscale: int = 4
    steps: int = 50
    cfg: float = 4.5
    seed: int | None = None
    sampler: Literal["iddpm", "dpm++"] = "iddpm"
    prompt: str | None = None
    caption: Literal["auto", "none"] = "auto"
    color_fix: Literal["wavelet", "adain", "none"] = "wavelet"
    tile: int | Literal["auto"] = "auto"
    device: str = "auto"
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    output_format: Literal["png", "jpg", "tiff", "webp"] | None = None
    save_map: bool = False
    overwrite: bool = False
    max_megapixels: float = 150.0
    strength: float = 1.0
    """0..1: how much of the restoration to keep, blended with the bicubic upscale of the
    input (1: the restoration as it is, 0: the plain upscale). Added within version 1: see
    `ADDED_OPTIONS`."""
    skip_existing: bool = False
    """Skip an input whose result (NAME_xN.EXT in the output folder) already exists: the job
    ends at once with a `result` naming that file and `skipped` true, so a re-run finishes
    only what an interrupted batch left. Excludes `overwrite`. Added within version 1."""
    offload: Literal["none", "model", "sequential"] = "none"
    """Where DreamClear's weights wait while they do not compute (docs/multi-gpu.md): "none" all
    on the device; "model" each component moved onto the device only while it runs; "sequential"
    each layer's weights copied in for its own forward (least device memory, slowest). Part of
    the warm model's key: another level loads the model again. The starter and upscalers ignore
    it. Added within version 1."""


ADDED_OPTIONS: tuple[str, ...] = ("strength", "skip_existing", "offload")
"""Restore options added within protocol version 1. An engine that reads one lists a
capability of the same name in `hello_reply`; `encode` leaves one out while it holds its
default, so a request that does not use it reads the same to an older engine; a client must not
send another value to an engine without the capability (`unsupported_options`)."""


def unsupported_options(options: RestoreOptionsMessage, capabilities: Iterable[str]) -> list[str]:
    """The added options that `options` sets (away from their default) and an engine with
    `capabilities` cannot read; empty when it can take them all."""
    defaults = RestoreOptionsMessage()
    return [
        name
        for name in ADDED_OPTIONS
        if name not in capabilities and getattr(options, name) != getattr(defaults, name)
    ]


@dataclass
class Restore(Request):
    """Restore files; each input becomes one job, announced by `accepted`."""

    TYPE: ClassVar[str] = "restore"
    inputs: list[str] = field(default_factory=list)
    """Image file paths on the engine's machine."""
    output_dir: str = ""
    options: RestoreOptionsMessage = field(default_factory=RestoreOptionsMessage)


@dataclass
class Cancel(Request):
    """Drop queued jobs (not the running one: that is `interrupt`). No ids: every queued job."""

    TYPE: ClassVar[str] = "cancel"
    job_ids: list[str] | None = None


@dataclass
class Interrupt(Request):
    """Stop the running job at its next step or tile; answered by `cancelled` for it."""

    TYPE: ClassVar[str] = "interrupt"
    job_id: str | None = None
    """Only interrupt if this job is the running one; None: whichever runs."""


ModelActionKind = Literal["list", "import", "verify", "remove", "download", "cancel"]
ExportFormat = Literal["png", "jpg", "tiff", "webp"]


@dataclass
class ModelAction(Request):
    """Manage the model store. "list" is answered by `models_reply`; "download" sends
    `model_progress` while it runs (off the job worker: restores go on); every other action,
    and the end of a download, by `model_done`; a failure by `error`."""

    TYPE: ClassVar[str] = "model_action"
    action: ModelActionKind = "list"
    name: str | None = None
    """The model (verify, remove, download, cancel); for import, the name to give a local
    model folder, or None to take the kind recognised from the contents."""
    path: str | None = None
    """import: a file or folder on the engine's machine."""
    link: bool = False
    """import: symlink the source into the store instead of copying it."""


@dataclass
class Export(Request):
    """Convert one result file into `destination`; answered by `exported` or `error`. The
    source is only read; its EXIF, ICC profile and XMP are carried over."""

    TYPE: ClassVar[str] = "export"
    source: str = ""
    """An existing image file on the engine's machine (usually a `result`'s output)."""
    destination: str = ""
    """An existing folder on the engine's machine."""
    format: ExportFormat = "png"
    quality: int = 95
    """JPEG and WebP quality, 1..100."""
    bit_depth: int = 8
    """8, or 16 (PNG and TIFF only)."""
    name_pattern: str = "{stem}"
    """File name without extension; fields {stem}, {scale}, {width}, {height}."""
    stem: str | None = None
    """The value of {stem}, e.g. the original photo's name; None: the source's name."""
    scale: int | None = None
    """The value of {scale} (the restore's upscale factor); needed only when the pattern uses it."""
    overwrite: bool = False
    """Replace an existing file of that name; otherwise the export fails (kind `output`)."""
    keep_both: bool = False
    """Pick a free name ("name (1).png") when the name is taken, instead of failing."""
    dry_run: bool = False
    """Write nothing: answer `exported` with the name it would write and whether it exists."""


@dataclass
class GenirPrompts(Request):
    """Run GenIR's "prompts" stage in a run folder made by `dreamclear genir init`: one job,
    announced by `accepted` (its input: the run folder), reporting stage "prompts" with step
    = prompts accepted so far of steps = wanted, answered by `result` (output: the stage's
    prompts.jsonl). A killed or interrupted job resumes where it stopped when sent again.
    Added within version 2: an engine that takes it lists the capability "genir"."""

    TYPE: ClassVar[str] = "genir_prompts"
    run: str = ""
    """The run folder on the engine's machine."""


@dataclass
class GenirPairs(Request):
    """Run GenIR's "pairs" stage (stage 1) in a run folder made by `dreamclear genir init`: one
    job, announced by `accepted` (its input: the run folder), reporting stage "pairs" with step
    = pairs done of steps = positive images, answered by `result` (output: the run's pairs
    folder). A killed or interrupted job resumes where it stopped when sent again.
    Added within version 2 under the capability "genir", like `genir_prompts`."""

    TYPE: ClassVar[str] = "genir_pairs"
    run: str = ""
    """The run folder on the engine's machine."""


@dataclass
class GenirFilter(Request):
    """Run GenIR's "filter" stage in a run folder: one job, announced by `accepted` (its input:
    the run folder), reporting stage "filter" with step = images scored of steps = generated
    images, answered by `result` (output: the run's filter/verdicts.jsonl). A run without a
    trained quality classifier first trains it (the trainer in a child process, stage "train",
    as the `train` request runs one); with `filter.judge` on and no judge model installed the
    job fails with kind `model_missing`. A killed or interrupted
    job resumes where it stopped when sent again.
    Added within version 2 under the capability "genir", like `genir_prompts`."""

    TYPE: ClassVar[str] = "genir_filter"
    run: str = ""
    """The run folder on the engine's machine."""


@dataclass
class Train(Request):
    """Train a model with `dreamclear train`, run by the engine as a child process: one job,
    announced by `accepted` (its input: the config), stage "load" while the trainer starts,
    then stage "train" with step = optimiser steps done of steps (the label has the loss),
    answered by `result` (output: the folder the trainer exported). Interrupted, the child
    stops; sent again with `resume` the run continues from its last checkpoint. A trainer that
    fails is an `error` (its kind and hint, or the end of its output).
    Added within version 2: an engine that takes it lists the capability "train"."""

    TYPE: ClassVar[str] = "train"
    config: str = ""
    """A training config (TOML, see resources/configs/) or a GenIR run's genir.toml, on the
    engine's machine. Relative paths in it are taken from the engine's working folder."""
    task: str = ""
    """The trainer's `--task` (e.g. "genir-prompts", "quality-classifier"); "" for none."""
    resume: bool = True
    """Continue from the newest complete checkpoint in the run's output folder, if any;
    false refuses a folder that already holds checkpoints."""
    max_steps: int = 0
    """Optimiser steps of the whole run; 0: the config's."""


@dataclass
class GenirFinetune(Request):
    """Run GenIR's "finetune" stage (stage 2, the dual prompts and cross-attention) in a run
    folder with pairs: the trainer (task `genir-prompts`) as a child process, like `train`:
    one job, stage "load" while it starts, then stage "finetune" with step = optimiser steps
    done of steps (the label has the loss), answered by `result` (output: RUN/finetune).
    Interrupted, the trainer saves a checkpoint; sent again it continues from it. Added within
    version 2 under the capability "genir"."""

    TYPE: ClassVar[str] = "genir_finetune"
    run: str = ""
    """The run folder on the engine's machine."""


@dataclass
class GenirGenerate(Request):
    """Run GenIR's "generate" stage (stage 3) in a run folder whose prompts and learned
    prompts exist: one job, announced by `accepted` (its input: the run folder), reporting
    stage "generate" with step = images done of steps = prompts, answered by `result` (output:
    the run's generate folder). A killed or interrupted job resumes where it stopped when sent
    again. Added within version 2 under the capability "genir", like `genir_prompts`."""

    TYPE: ClassVar[str] = "genir_generate"
    run: str = ""
    """The run folder on the engine's machine."""


@dataclass
class GenirExport(Request):
    """Run GenIR's "export" stage in a run folder whose images are filtered: one job, reporting
    stage "export" with step = images exported of steps = images accepted, answered by
    `result` (output: the run's export folder). Sent again it resumes, and after the decisions
    changed (an override) it brings the export up to date. Added within version 2 under the
    capability "genir"."""

    TYPE: ClassVar[str] = "genir_export"
    run: str = ""
    """The run folder on the engine's machine."""


@dataclass
class GenirStatus(Request):
    """How far a GenIR run folder is, read from its files (no job, nothing written): answered
    by `genir_status_reply`, or `error`. Added within version 2 under the capability "genir"."""

    TYPE: ClassVar[str] = "genir_status"
    run: str = ""
    """The run folder on the engine's machine."""


@dataclass
class Shutdown(Request):
    """Finish nothing more: interrupt the running job, drop the queue, answer `bye`, exit."""

    TYPE: ClassVar[str] = "shutdown"


# --- Events (engine -> client) ---------------------------------------------------------------


@dataclass
class Event(Message):
    request_id: str | None = None
    """The `id` of the request this answers, when it answers one."""


@dataclass
class HelloReply(Event):
    TYPE: ClassVar[str] = "hello_reply"
    protocol: int = PROTOCOL_VERSION
    engine_version: str = ""
    capabilities: list[str] = field(default_factory=list)
    """e.g. ["restore", "models", "cancel", "interrupt", "strength"]: the optional requests and
    the `ADDED_OPTIONS` this engine takes; later "genir", "train"."""
    device: str = ""
    """What the engine will compute on, e.g. "cuda:0 (NVIDIA H100, 80 GB)" or "cpu"."""


@dataclass
class ModelsReply(Event):
    TYPE: ClassVar[str] = "models_reply"
    models: list[dict[str, Any]] = field(default_factory=list)
    """One dict per known model: name, title, status, size_bytes, licence, path."""
    devices: list[dict[str, Any]] = field(default_factory=list)
    """One dict per device: name, kind ("cpu"/"cuda"), total_memory_bytes, free_memory_bytes."""


@dataclass
class Accepted(Event):
    TYPE: ClassVar[str] = "accepted"
    job_id: str = ""
    input: str = ""


@dataclass
class Queued(Event):
    TYPE: ClassVar[str] = "queued"
    job_id: str = ""
    position: int = 0
    """Jobs ahead of this one, the running one included."""


@dataclass
class Started(Event):
    TYPE: ClassVar[str] = "started"
    job_id: str = ""
    input: str = ""


@dataclass
class StageEvent(Event):
    TYPE: ClassVar[str] = "stage"
    job_id: str = ""
    stage: Stage = "load"


@dataclass
class Progress(Event):
    """Throttled at the source (about 20 per second, latest wins)."""

    TYPE: ClassVar[str] = "progress"
    job_id: str = ""
    stage: Stage = "denoise"
    step: int = 0
    steps: int = 0
    tile: int = 0
    tiles: int = 0
    eta_s: float | None = None
    """Seconds left for the whole job, when it can be estimated."""
    fraction: float | None = None
    """How much of the whole job is done, 0..1, across every stage (weighted by the time each
    takes); None while unknown. Never goes back within one try of a job."""
    label: str = ""
    """The position in words, for people: "Removing degradations (tile 3/9)",
    "Denoising 12/50", "Decoding"."""


@dataclass
class Preview(Event):
    TYPE: ClassVar[str] = "preview"
    job_id: str = ""
    path: str = ""
    """A PNG on the engine's machine of the result so far, at the output's aspect (at most
    about 1 MP): finished tiles restored, the rest the plain upscale. Rewritten in place for
    each preview of the job (atomically); throttled to about one a second."""
    width: int = 0
    height: int = 0
    """The size of the final result, in pixels (the preview may be smaller)."""


@dataclass
class DegradationMapReady(Event):
    TYPE: ClassVar[str] = "degradation_map"
    job_id: str = ""
    path: str = ""
    """The saved `.map.npz`; its `.map.png` preview lies beside it."""
    legend: list[list[str]] = field(default_factory=list)
    """[[colour, meaning], ...] for the preview's channels."""


@dataclass
class Result(Event):
    TYPE: ClassVar[str] = "result"
    job_id: str = ""
    input: str = ""
    output: str = ""
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage."""
    peak_memory_bytes: int | None = None
    """Peak device memory of the job (CUDA), or peak resident memory of the engine (CPU)."""
    tile_grid: list[list[int]] = field(default_factory=list)
    """The tiles the job ran on (DreamClear's latent tiles, the starter's remover tiles) as
    [top, left, height, width] boxes in output pixels; empty when the model does not tile."""
    skipped: bool = False
    """The result was there already (`skip_existing`): nothing was restored. Added within
    version 1: left out of the JSON while false (see `ADDED_EVENT_FIELDS`)."""


@dataclass
class Warning(Event):
    TYPE: ClassVar[str] = "warning"
    job_id: str | None = None
    message: str = ""


@dataclass
class Error(Event):
    TYPE: ClassVar[str] = "error"
    job_id: str | None = None
    kind: ErrorKind = "internal"
    message: str = ""
    hint: str = ""


@dataclass
class Cancelled(Event):
    TYPE: ClassVar[str] = "cancelled"
    job_id: str = ""
    reason: Literal["cancel", "interrupt", "shutdown"] = "cancel"


@dataclass
class ModelProgress(Event):
    """A download's progress, throttled at the source (about 10 per second, latest wins)."""

    TYPE: ClassVar[str] = "model_progress"
    name: str = ""
    file: str = ""
    """What is being fetched now (the hub's description of the file), for people."""
    done_bytes: int = 0
    total_bytes: int | None = None
    """None while the hub has not said the size."""


@dataclass
class ModelDone(Event):
    """The end of a `model_action` other than "list"."""

    TYPE: ClassVar[str] = "model_done"
    action: ModelActionKind = "list"
    name: str = ""
    model: dict[str, Any] | None = None
    """The model as `models_reply` lists it, after the action; None once removed."""
    problems: list[str] = field(default_factory=list)
    """verify: what is wrong (empty: the model is sound)."""
    checked: list[str] = field(default_factory=list)
    """verify: the files whose headers were read."""
    freed_bytes: int = 0
    """remove: bytes deleted from the store (linked sources are kept)."""
    cancelled: bool = False
    """download: stopped by a "cancel" (the partial files are kept; downloading resumes);
    cancel: a running download was told to stop."""


@dataclass
class Exported(Event):
    TYPE: ClassVar[str] = "exported"
    path: str = ""
    """The file written (or, with `dry_run`, the one that would be)."""
    exists: bool = False
    """dry_run: a file of that name is already there."""
    written: bool = False
    """False for a dry run."""


@dataclass
class GenirStatusReply(Event):
    TYPE: ClassVar[str] = "genir_status_reply"
    run: str = ""
    status: dict[str, Any] = field(default_factory=dict)
    """`dreamclear genir status RUN --json`'s object: "format", "run", "stage_reached",
    "counts", "next" (the first stage not done, or null) and "stages", one object per stage in
    run order with "name", "state" ("todo", "partial", "done", "stale"), "done", "total",
    "unit", "per_hour", "eta_s" (seconds), "counts" and "note" (docs/genir.md, "`genir run`
    and `genir status`")."""


@dataclass
class Bye(Event):
    TYPE: ClassVar[str] = "bye"


REQUESTS: dict[str, type[Request]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        ListModels,
        Restore,
        Cancel,
        Interrupt,
        Shutdown,
        ModelAction,
        Export,
        GenirPrompts,
        GenirPairs,
        GenirFilter,
        GenirFinetune,
        GenirGenerate,
        Train,
        GenirExport,
        GenirStatus,
    )
}
EVENTS: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        HelloReply,
        ModelsReply,
        Accepted,
        Queued,
        Started,
        StageEvent,
        Progress,
        Preview,
        DegradationMapReady,
        Result,
        Warning,
        Error,
        Cancelled,
        Bye,
        ModelProgress,
        ModelDone,
        Exported,
        GenirStatusReply,
    )
}


ADDED_EVENT_FIELDS: dict[type[Event], tuple[str, ...]] = {Result: ("skipped",)}
"""Event fields added within version 1. Each is left out of the JSON while it holds its
default, and takes another value only in answer to an added option, which an older client
never sends; so an older client never meets it."""


def encode(message: Message) -> bytes:
    """One JSON line (with its newline) for `message`."""
    payload = {"type": message.TYPE, **dataclasses.asdict(message)}
    if isinstance(message, Restore):
        defaults = RestoreOptionsMessage()
        for name in ADDED_OPTIONS:
            if getattr(message.options, name) == getattr(defaults, name):
                del payload["options"][name]
    for name in ADDED_EVENT_FIELDS.get(type(message), ()):
        if getattr(message, name) == getattr(type(message)(), name):
            del payload[name]
    line = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    if len(line) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(line)} bytes exceeds {MAX_MESSAGE_BYTES}")
    return line


def decode(line: bytes | str, registry: dict[str, type[Message]]) -> Message:
    """Parse one line into a message of `registry` (REQUESTS or EVENTS); ProtocolError if not."""
    raw = line.encode() if isinstance(line, str) else line
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError(f"not a JSON line: {error}") from None
    if not isinstance(payload, dict):
        raise ProtocolError("a message must be a JSON object")
    kind = payload.pop("type", None)
    cls = registry.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {kind!r}; known: {', '.join(sorted(registry))}")
    return _build(cls, payload)


def _build(cls: type, payload: dict[str, Any], name: str = "") -> Any:
    name = name or getattr(cls, "TYPE", "") or cls.__name__
    hints = _field_types(cls)
    unknown = set(payload) - set(hints)
    if unknown:
        raise ProtocolError(f"{name}: unknown field(s) {', '.join(sorted(unknown))}")
    for field_name, value in payload.items():
        hint = hints[field_name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise _wrong_type(name, field_name, value, "an object")
            payload[field_name] = _build(hint, value, f"{name}.{field_name}")
        elif not _conforms(value, hint):
            raise _wrong_type(name, field_name, value, _describe(hint))
    request_id = payload.get("id")
    if issubclass(cls, Request) and isinstance(request_id, str) and len(request_id) > MAX_ID_CHARS:
        raise ProtocolError(
            f"{name}: id of {len(request_id)} characters (at most {MAX_ID_CHARS})", "bad_request"
        )
    return cls(**payload)


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    """Each field's type, resolved from the (string) annotations."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a decoded JSON value fits `hint` (bool is not an int; floats are finite)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arg) for arg in args)
    if origin is Literal:
        return any(type(value) is type(arg) and value == arg for arg in args)
    if origin is list:
        return isinstance(value, list) and all(_conforms(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            isinstance(key, str) and _conforms(item, args[1]) for key, item in value.items()
        )
    if hint is bool:
        return type(value) is bool
    if hint is int:
        return type(value) is int
    if hint is float:
        return type(value) in (int, float) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    raise TypeError(f"no JSON check for {hint!r}")  # a field type this module does not use


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if origin is Literal:
        return " or ".join(json.dumps(arg) for arg in args)
    if origin is list:
        return f"a list of {_ITEMS.get(args[0], 'lists')}"
    if origin is dict:
        return "an object"
    names = {type(None): "null", bool: "true or false", int: "a whole number",
             float: "a finite number", str: "a string"}  # fmt: skip
    return names.get(hint, str(hint))


_ITEMS = {str: "strings", int: "whole numbers", float: "numbers"}


def _wrong_type(message_type: str, field_name: str, value: Any, expected: str) -> ProtocolError:
    shown = json.dumps(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ProtocolError(
        f"{message_type}: {field_name} must be {expected}, not {shown}", "bad_request"
    )
