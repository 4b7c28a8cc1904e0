"""The DreamClear stage harness: time and peak memory of every stage of one restore.

Per arrangement, resolution and sampler run it reports remover, VAE encode, text encoding,
each denoising step (first and mean), VAE decode and colour fix, plus the model load:

- "ours": the random model saved in our converted layout (bf16 safetensors) to a temporary
  folder and loaded back by the real loading code (`load_model_folder`: memory-mapped, onto
  the device tensor by tensor); T5 encodes on the CPU; latent, VAE and remover tiles.
- "published": fp32 weights under fp16 autocast (the transformer's calls; bf16 on the CPU,
  see `autocast_dtype`), the VAE and the remover on the whole image, 128-cell latent tiles;
  its load (optional) is the published one: build the model, unpickle an fp32 state dict,
  load it, move it to the device.

Both restore the same crop of a bundled photo (output `resolution` px square at `upscale`,
no short-side minimum, so the working size is the output size) in the same process, one
after the other, each with only its own models on the device. Numbers on random weights:
speed and memory do not depend on the values.
"""

from __future__ import annotations

import contextlib
import gc
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.bench.stage_meter import AnonymousPeak, StageMeter, patched, resident_bytes
from engine.bench.stage_models import build_components, parameter_bytes, parameter_count

ARRANGEMENTS = ("ours", "published")
STAGES = ("remover", "vae encode", "text encoding", "denoise step", "vae decode", "colour fix")
UNTILED = 1 << 20
PUBLISHED_LATENT_TILE = 128


@dataclass(frozen=True)
class RunSpec:
    sampler: str
    steps: int

    @property
    def label(self) -> str:
        return f"{self.sampler}:{self.steps}"


@dataclass
class HarnessConfig:
    size: str = "tiny"
    device: str = "cpu"
    resolutions: tuple[int, ...] = (256,)
    """Output sides in px (input = resolution / upscale)."""
    upscale: int = 4
    runs: tuple[RunSpec, ...] = (RunSpec("iddpm", 50),)
    arrangements: tuple[str, ...] = ARRANGEMENTS
    text_encoder: str = "small"
    compile: bool = False
    attention: str = "auto"
    """"auto": SDPA picks its kernel (flash / memory-efficient on CUDA); "math": SDPA's
    explicit-softmax kernel, to measure what the fused kernels give."""
    cfg: str = "batched"
    """"batched": conditional and unconditional passes as one batch of 2 (what the pipeline
    does); "separate": two batch-1 passes, to measure what batching gives."""
    published_load: bool = False
    warmup: bool = False


@dataclass
class StageRow:
    seconds: float
    calls: int
    peak_bytes: int
    cpu_seconds: float


@dataclass
class RunReport:
    arrangement: str
    resolution: int
    sampler: str
    steps: int
    stages: dict[str, StageRow]
    first_step_seconds: float
    mean_step_seconds: float
    total_seconds: float
    peak_bytes: int


@dataclass
class LoadReport:
    arrangement: str
    seconds: float
    parts: dict[str, float]
    peak_bytes: int
    """VRAM peak on CUDA, resident high-water on the CPU."""
    anonymous_peak_rise_bytes: int
    """Rise of non-file resident memory during the load (a CPU copy of the weights shows here)."""
    transformer_bytes: int
    transformer_dtype: str
    text_encoder_device: str
    text_encoder_bytes: int
    resident_after_bytes: int


@dataclass
class HarnessReport:
    config: dict[str, Any]
    machine: dict[str, Any]
    transformer_parameters: int
    notes: list[str] = field(default_factory=list)
    loads: list[LoadReport] = field(default_factory=list)
    runs: list[RunReport] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _machine(device: torch.device) -> dict[str, Any]:
    info = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def input_image(resolution: int, upscale: int) -> torch.Tensor:
    """(1, 3, s, s) in [0, 1], s = resolution / upscale, from the middle of a bundled photo."""
    from engine.bench.speed import input_crop

    side = max(8, resolution // upscale)
    image = input_crop(side) / 255.0
    if image.shape[-1] < side:  # a photo smaller than asked: stretch it
        image = torch.nn.functional.interpolate(image, size=(side, side), mode="bicubic")
    return image.clamp(0, 1)


class _MeasuredText:
    """The text encoder with each call measured; `max_length` etc. pass through."""

    def __init__(self, encoder: Any, meter: StageMeter) -> None:
        self._encoder = encoder
        self._call = meter.wrap(encoder, "text encoding")

    def __call__(self, captions: list[str]):
        return self._call(captions)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)


@contextlib.contextmanager
def _instrumented(pipeline, meter: StageMeter, config: HarnessConfig, autocast: bool):
    """Meter every stage of `pipeline` for the block (and set up autocast / split CFG)."""
    import engine.pipelines.restore as restore_module

    transformer = pipeline.transformer
    forward = transformer.forward
    device_type = meter.device.type

    def step_forward(*args: Any, **kwargs: Any):
        # A step opens at its first tile and closes in the step-end callback.
        if not meter.is_open("denoise step"):
            meter.open("denoise step")
        if config.cfg == "separate" and kwargs["hidden_states"].shape[0] == 2:
            return _two_passes(forward, kwargs)
        if autocast:
            with torch.autocast(device_type, dtype=autocast_dtype(meter.device)):
                return forward(*args, **kwargs)
        return forward(*args, **kwargs)

    with contextlib.ExitStack() as stack:
        stack.enter_context(patched(transformer, "forward", step_forward))
        vae = pipeline.vae
        stack.enter_context(patched(vae, "encode", meter.wrap(vae.encode, "vae encode")))
        stack.enter_context(patched(vae, "decode", meter.wrap(vae.decode, "vae decode")))
        remover = pipeline.remover
        if remover is not None:
            stack.enter_context(patched(remover, "forward", meter.wrap(remover.forward, "remover")))
        stack.enter_context(
            patched(pipeline, "text_encoder", _MeasuredText(pipeline.text_encoder, meter))
        )
        colour = meter.wrap(restore_module.apply_color_fix, "colour fix")
        stack.enter_context(patched(restore_module, "apply_color_fix", colour))
        if config.attention == "math":
            from torch.nn.attention import SDPBackend, sdpa_kernel

            stack.enter_context(sdpa_kernel([SDPBackend.MATH]))
        yield


def autocast_dtype(device: torch.device) -> torch.dtype:
    """The published arrangement's autocast: fp16 on CUDA; bf16 on the CPU, whose fp16 matrix
    kernels are emulated and some twenty times slower, which would measure nothing useful."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def _two_passes(forward: Callable[..., Any], kwargs: dict[str, Any]):
    """One batch-of-2 transformer call as two batch-1 calls (each input's own row)."""
    from engine.models.dreamclear_transformer import DreamClearTransformerOutput

    outputs = []
    for row in (0, 1):
        part = {
            key: (value[row : row + 1] if isinstance(value, torch.Tensor) and value.ndim else value)
            for key, value in kwargs.items()
        }
        outputs.append(forward(**part))
    return DreamClearTransformerOutput(
        sample=torch.cat([o.sample for o in outputs]),
        router_weights=None
        if outputs[0].router_weights is None
        else torch.cat([o.router_weights for o in outputs], dim=1),
        degradation_magnitude=None
        if outputs[0].degradation_magnitude is None
        else torch.cat([o.degradation_magnitude for o in outputs], dim=1),
    )


def restore_once(
    pipeline, config: HarnessConfig, arrangement: str, resolution: int, run: RunSpec
) -> RunReport:
    """One metered restore of the bundled crop."""
    device = pipeline.device
    meter = StageMeter(device)
    published = arrangement == "published"
    tiles: dict[str, Any] = {"tile_size": "auto"}
    if published:
        tiles = {
            "tile_size": PUBLISHED_LATENT_TILE,
            "vae_tile_size": UNTILED,
            "remover_tile_size": UNTILED,
        }

    def step_end(_pipeline, _index, _timestep, _state):
        meter.close("denoise step")
        return None

    image = input_image(resolution, config.upscale)
    pipeline.text_encoder.clear_cache()  # every run times its own (cold) text encoding
    _free(device)
    with torch.inference_mode(), _instrumented(pipeline, meter, config, autocast=published):
        output = pipeline(
            image,
            upscale=config.upscale,
            min_short_side=0,
            num_inference_steps=run.steps,
            sampler=run.sampler,
            generator=torch.Generator(device).manual_seed(0),
            caption="none",
            callback_on_step_end=step_end,
            **tiles,
        )
    stats = meter.stats
    steps = stats["denoise step"].seconds
    return RunReport(
        arrangement=arrangement,
        resolution=resolution,
        sampler=run.sampler,
        steps=run.steps,
        stages={
            name: StageRow(
                stats[name].total,
                len(stats[name].seconds),
                stats[name].peak_bytes,
                stats[name].cpu_seconds,
            )
            for name in STAGES
            if name in stats
        },
        first_step_seconds=steps[0],
        mean_step_seconds=sum(steps) / len(steps),
        total_seconds=output.timings["total"],
        peak_bytes=max(stat.peak_bytes for stat in stats.values()),
    )


def _timed_load(meter: StageMeter, load: Callable[[], Any], parts: dict[str, Any]):
    """Run `load` as stage "load", each named loader function of `parts` timed on its own."""
    import engine.weights.components_io as components_io

    part_meter = StageMeter(meter.device)
    with contextlib.ExitStack() as stack:
        for name, function_name in parts.items():
            function = getattr(components_io, function_name)
            stack.enter_context(
                patched(components_io, function_name, part_meter.wrap(function, name))
            )
        baseline = AnonymousPeak()
        with baseline:
            pass
        with AnonymousPeak() as anonymous, meter.measure("load"):
            loaded = load()
    rise = max(0, anonymous.peak - baseline.peak)
    return loaded, {name: stat.total for name, stat in part_meter.stats.items()}, rise


def load_ours(folder: Path, device: torch.device) -> tuple[Any, LoadReport]:
    from engine.weights.components_io import load_model_folder

    meter = StageMeter(device)
    parts = {
        "transformer": "_load_transformer",
        "vae": "_load_vae",
        "text encoder": "_load_text_encoder",
        "remover": "_load_remover",
    }
    components, part_seconds, rise = _timed_load(
        meter, lambda: load_model_folder(folder, device, torch.bfloat16), parts
    )
    transformer = components.transformer
    return components, LoadReport(
        arrangement="ours",
        seconds=meter.stats["load"].total,
        parts=part_seconds,
        peak_bytes=meter.stats["load"].peak_bytes,
        anonymous_peak_rise_bytes=rise,
        transformer_bytes=parameter_bytes(transformer),
        transformer_dtype=str(transformer.dtype).removeprefix("torch."),
        text_encoder_device=str(components.text_encoder.device),
        text_encoder_bytes=parameter_bytes(components.text_encoder.model),
        resident_after_bytes=_resident_on(device),
    )


def load_published(pickle_path: Path, device: torch.device, size: str):
    """The published load: build the model, unpickle fp32 weights, load them, move it."""
    from engine.models.dreamclear_transformer import DreamClearTransformer2DModel
    from engine.models.presets import DREAMCLEAR_1024, TINY

    meter = StageMeter(device)

    def load():
        model = DreamClearTransformer2DModel(**(DREAMCLEAR_1024 if size == "published" else TINY))
        model.load_state_dict(torch.load(pickle_path, map_location="cpu", weights_only=True))
        return model.to(device).eval().requires_grad_(False)

    transformer, _, rise = _timed_load(meter, load, {})
    return transformer, LoadReport(
        arrangement="published",
        seconds=meter.stats["load"].total,
        parts={},
        peak_bytes=meter.stats["load"].peak_bytes,
        anonymous_peak_rise_bytes=rise,
        transformer_bytes=parameter_bytes(transformer),
        transformer_dtype="float32",
        text_encoder_device="cpu",
        text_encoder_bytes=0,
        resident_after_bytes=_resident_on(device),
    )


def _resident_on(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    return resident_bytes()


@contextlib.contextmanager
def _saved_models(components, config: HarnessConfig) -> Iterator[Path]:
    """A temporary folder with our bf16 layout (and the published fp32 pickle if asked)."""
    from engine.weights.components_io import save_components

    folder = Path(tempfile.mkdtemp(prefix="dreamclear-stages-"))
    try:
        transformer = components.transformer
        if config.published_load:
            state = {k: v.detach().cpu() for k, v in transformer.state_dict().items()}
            torch.save(state, folder / "published-transformer.pth")
            del state
        # Cast in place for the save and back after: no second copy at 2 B parameters
        # (nn.Module.to: diffusers' own `to` warns about casting outside from_pretrained).
        torch.nn.Module.to(transformer, torch.bfloat16)
        save_components(components, folder / "ours")
        if "published" in config.arrangements and not config.published_load:
            torch.nn.Module.to(transformer, torch.float32)
        else:
            # Nothing needs the in-memory copy: drop it so the peaks measured are ours.
            components.transformer = None
            del transformer
            gc.collect()
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _prepare(pipeline, config: HarnessConfig, notes: list[str]) -> None:
    if config.compile:
        pipeline.transformer = torch.compile(pipeline.transformer)
        notes.append("transformer under torch.compile: the first step includes compiling")
    if config.warmup:
        with torch.inference_mode():
            pipeline(
                input_image(128, config.upscale),
                upscale=config.upscale,
                min_short_side=0,
                num_inference_steps=1,
                caption="none",
            )


def run(config: HarnessConfig, on_event: Callable[[str], None] | None = None) -> HarnessReport:
    """Build, save, load and restore with every arrangement; see the module docstring."""
    from engine.pipelines.restore import DreamClearRestorePipeline

    say = on_event or (lambda _message: None)
    device = torch.device(config.device)
    say(f"building the {config.size} model with random weights")
    components = build_components(config.size, config.text_encoder, device)
    report = HarnessReport(
        config=asdict(config),
        machine=_machine(device),
        transformer_parameters=parameter_count(components.transformer),
    )
    if "published" in config.arrangements and device.type != "cuda":
        report.notes.append("published arrangement on the CPU: bf16 autocast (fp16 on CUDA)")
    if config.size == "published" and config.text_encoder == "small":
        report.notes.append(
            "T5-XXL replaced by a 2-layer random stand-in (same 4096-wide output): "
            "text-encoding times are not T5-XXL's"
        )
    say("saving our bf16 layout" + (" and the fp32 pickle" if config.published_load else ""))
    with _saved_models(components, config) as folder:
        for arrangement in config.arrangements:
            say(f"{arrangement}: loading")
            if arrangement == "ours":
                loaded, load_report = load_ours(folder / "ours", device)
                report.loads.append(load_report)
                pipeline = DreamClearRestorePipeline.from_components(loaded)
            else:
                if config.published_load:
                    transformer, load_report = load_published(
                        folder / "published-transformer.pth", device, config.size
                    )
                    report.loads.append(load_report)
                else:
                    transformer = components.transformer.to(device)
                pipeline = DreamClearRestorePipeline(
                    transformer,
                    components.vae.to(device),
                    components.text_encoder,
                    remover=components.remover.to(device),
                )
            _prepare(pipeline, config, report.notes)
            for resolution in config.resolutions:
                for spec in config.runs:
                    say(f"{arrangement}: {resolution} px, {spec.label}")
                    report.runs.append(
                        restore_once(pipeline, config, arrangement, resolution, spec)
                    )
            del pipeline
            if arrangement == "ours":
                del loaded
            else:
                for module in (components.vae, components.remover):
                    module.cpu()
                del transformer  # the published transformer is used once: no way back to the CPU
            _free(device)
    return report
