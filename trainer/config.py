"""Training configuration: typed dataclasses read once from a TOML file.

`load_config(path)` checks everything a run needs before any work starts (unknown fields,
wrong types, bad values, missing paths) and names the bad field in its error. Relative paths
are taken from the current folder, like every other command-line path.
`config_to_toml` writes a config back, so each checkpoint carries the settings it was made with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dreamclear_studio_resources import resource_path
from engine.genir.config import FinetuneConfig, validate_finetune
from engine.typed_config import ConfigError, from_toml_table, read_toml, to_toml

__all__ = ["ConfigError", "TrainConfig", "config_to_toml", "load_config", "validate"]


TaskName = Literal["starter", "starter-gate", "dreamclear", "genir-prompts", "quality-classifier"]
MixedPrecision = Literal["no", "fp16", "bf16"]


BUNDLED_PHOTOS = resource_path("photos")
MAX_DETAIL_CANDIDATES = 16
"""More crop positions per sample than this would only ever pick the photo's busiest corner."""


@dataclass
class DataConfig:
    photos: Path = BUNDLED_PHOTOS
    """Folder of HQ training photos (png, jpg, webp...; searched non-recursively; default: the
    photos that ship in resources/)."""
    validation_photos: tuple[str, ...] = ()
    """File names in `photos` held out of training and used for validation."""
    more_photos: tuple[Path, ...] = ()
    """More folders of training photos (starter task), never used for validation; a file
    named in `validation_photos` is left out of these too."""
    skip_photos: tuple[str, ...] = ()
    """Name patterns (fnmatch, e.g. "gc-*") of photos in any folder left out of training (starter
    task): photos unfit as restoration targets (sharpened, compressed)."""
    halved_photos: tuple[str, ...] = ()
    """Name patterns of photos in any folder taken at half their size (a 2x2 box filter) before
    cropping: photos whose own pixels are unfit targets (sharpened, compressed) but whose
    halves are, as Real-ESRGAN also trains on downscaled copies of its photos."""
    also_halved_photos: tuple[str, ...] = ()
    """Name patterns of photos taken twice: at their own size and, as a second photo, at half
    (a 2x2 box filter): the same scenes with their detail twice as dense, as Real-ESRGAN
    trains on downscaled copies of its photos beside the originals."""
    crop_min: int = 128
    """Smallest HQ crop side in pixels (a multiple of 16)."""
    crop_max: int = 192
    """Largest HQ crop side in pixels (a multiple of 16); a batch is cut to its smallest crop."""
    scale: int = 4
    """Downscaling factor of the synthetic degradation (LQ = HQ / scale)."""
    batch_size: int = 4
    """Crops per batch per process."""
    samples_per_epoch: int = 1000
    """Random crops drawn per epoch (an epoch is only a unit of the data seed)."""
    num_workers: int = 0
    """DataLoader worker processes (0: load in the training process)."""
    min_photo_side: int = 0
    """Photos whose short side is below this are skipped with a warning (0: crop_max)."""
    clean_fraction: float = 0.0
    """Share of training samples (0..1) whose LQ is only a downscale in 8 bits (the filter:
    `clean_resize_modes`), an undamaged photo made small, so a restorer also learns to leave
    clean photos alone (starter task; 0: every LQ has the published degradation)."""
    clean_resize_modes: tuple[Literal["area", "bilinear", "bicubic"], ...] = ("area",)
    """How a clean sample is made small, one of these per sample (drawn from its seed): "area"
    (a box filter), "bilinear", "bicubic" (both antialiased). A restorer that only sees box
    downscales of clean photos learns that kernel: the v2.1 gentle restorer gains 1.8 dB over
    bicubic on box-downscaled training crops but 0.25 dB on bicubic-downscaled ones."""
    single_stage_fraction: float = 0.0
    """Share of training samples (0..1) whose LQ has one mild-to-moderate stage of blur,
    downscale, noise and JPEG (`engine.degradation.single_stage`), the damage most photos have
    (starter task; the rest, 1 - clean - single, get the published degradation)."""
    single_stage_jpeg_quality: tuple[int, int] = (55, 95)
    """The range a single-stage sample's JPEG quality is drawn from (uniform, 4:2:0 chroma as
    cameras and libjpeg save). Up to 100: a restorer that never saw a near-lossless JPEG takes
    the chroma subsampling of any JPEG for strong compression and smooths it."""
    clean_jpeg_fraction: float = 0.0
    """Share of clean samples (0..1) saved as a camera JPEG after the downscale (quality from
    `clean_jpeg_quality`, 4:2:0): an undamaged photo a user brings is a camera's JPEG, not
    lossless pixels, and a restorer must leave it alone too."""
    clean_jpeg_quality: tuple[int, int] = (90, 98)
    """The range a clean sample's JPEG quality is drawn from (uniform): cameras and phones
    save at 90 and above."""
    detail_candidates: int = 1
    """Crop positions drawn per sample; the one with the most detail (mean absolute luma
    gradient of the HQ crop) is taken. 1: every position equally likely. More steers training
    to texture and edges, where a small restorer has the most to learn, away from flat sky
    that it learns early (as SamplingAug, Wang et al. 2021, samples informative patches)."""


@dataclass
class OptimisationConfig:
    optimizer: Literal["adam", "adamw"] = "adam"
    """torch.optim.Adam or AdamW (decoupled weight decay)."""
    learning_rate: float = 2e-4
    """The learning rate (the estimator's may differ: starter.estimator_learning_rate)."""
    schedule: Literal["constant", "cosine"] = "constant"
    """"cosine": from `decay_from_step` to max_steps the rate falls along a half cosine to
    `final_learning_rate_ratio` of itself (trainer/lr_schedule.py); before it, and with
    "constant", it stays as set."""
    decay_from_step: int = 0
    """The step the cosine decay starts at (a phase that continues a run: that run's step)."""
    final_learning_rate_ratio: float = 0.01
    """The rate at max_steps as a share of the set one (cosine only)."""
    weight_decay: float = 0.0
    """Weight decay (L2 for adam, decoupled for adamw)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam betas."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global norm before each optimiser step (0: no clipping)."""


@dataclass
class CheckpointConfig:
    output_dir: Path = Path("runs/train")
    """Folder for checkpoints/, validation/ and export/ (`--output-dir` overrides it)."""
    checkpoint_every: int = 500
    """Save a checkpoint every this many optimiser steps (and always at the end)."""
    keep_last: int = 3
    """Complete checkpoints kept; the oldest is deleted once a newer one is complete."""
    export_dir: Path | None = None
    """Folder the final weights are exported to (None: OUTPUT/export). A GenIR run exports
    to RUN/finetune, where generation reads them."""


@dataclass
class ValidationConfig:
    every: int = 500
    """Validate every this many optimiser steps (and at the end); 0: only at the end."""
    num_images: int = 5
    """Validation photos used (the first of `data.validation_photos`)."""
    crop: int = 256
    """Side of the centre crop of each validation photo, in HQ pixels (a multiple of 16)."""
    at_start: bool = False
    """Also validate before the first step of a new run (the baseline a run's gain is from)."""


@dataclass
class StarterConfig:
    restorer: Literal["rrdbnet", "compact"] = "rrdbnet"
    """"rrdbnet": spandrel's ESRGAN at scale 1, fed the bicubic upscale (starter v1);
    "compact": Real-ESRGAN's SRVGGNetCompact run at the input's resolution with a pixel-shuffle
    up-sampling by `data.scale` (starter v2: fast on a CPU)."""
    num_feat: int = 32
    """Restorer feature channels."""
    num_block: int = 4
    """Restorer RRDB blocks (rrdbnet)."""
    num_conv: int = 16
    """Restorer body convolutions (compact)."""
    restorer_start: Literal["random", "bilinear"] = "random"
    """How a new compact restorer starts: "random" (the layers' default init) or "bilinear"
    (`engine.models.starter.start_as_bilinear`: a bilinear upscaler whose untrained features
    add nothing yet; from random, Compact's residual collapses to zero for thousands of
    steps). `init_from` with the restorer part overrides both."""
    estimator_channels: int = 32
    """Degradation estimator conv width."""
    estimator_context_layers: int = 0
    """Degradation estimator 3x3 convs at token resolution (reads neighbouring tokens)."""
    estimator_weight: float = 1.0
    """Weight of the estimator's MSE on the strength maps, added to the restorer's L1."""
    estimator_learning_rate: float = 0.0
    """The estimator's own learning rate (0: optimisation.learning_rate)."""
    gradient_weight: float = 0.0
    """Weight of an L1 on image gradients (sharper edges, no perceptual network needed)."""
    ema_decay: float = 0.0
    """Keep an exponential moving average of the weights (Real-ESRGAN: 0.999; warmed up as
    min(decay, (1 + step) / (10 + step))) and validate and export the average instead of the
    last step's weights. 0: no average."""
    init_from: Path | None = None
    """A starter model folder (restorer.safetensors + estimator/, e.g. resources/models/starter)
    whose weights start the run; its sizes must match the fields above. None: random init."""
    init_parts: tuple[Literal["restorer", "estimator"], ...] = ("restorer", "estimator")
    """The parts `init_from` starts; the others start random. A new restorer architecture
    keeps the folder's estimator with ["estimator"]."""
    init_restorer_file: str = "restorer.safetensors"
    """The file in `init_from` that starts the restorer (e.g. "restorer-gentle.safetensors")."""
    deepen_restorer: bool = False
    """A compact restorer from `init_from` with fewer body convolutions than `num_conv` is made
    deeper by identity layers (`engine.models.compact_growth`): the run starts from exactly
    its output and learns to use the new layers. False: its sizes must match."""
    train_restorer: bool = True
    """Train the restorer; false keeps it as initialised (e.g. an estimator-only fine-tune)."""
    train_estimator: bool = True
    """Train the degradation estimator; false keeps it as initialised."""


@dataclass
class StarterGateConfig:
    """The starter-gate task: the gate that blends a starter's two restorers per region
    (engine.models.expert_gate), trained with both of them frozen."""

    experts_from: Path | None = None
    """A starter model folder holding both experts at one scale: restorer.safetensors (the
    all-round restorer, taken where the damage is heavy) and restorer-gentle.safetensors."""
    standardisation_crops: int = 256
    """Training crops (the first of epoch 0) whose damage features set the gate's
    standardisation before the first step."""
    features: int = 8
    """How many of the damage statistics it reads, from the first (engine.models.damage_features:
    8 as v2.1's and v2.2's gates, 14 all of them)."""
    hidden_units: int = 0
    """0: a logistic regression (v2.1, v2.2); else one tanh layer this wide (v2.3: 16)."""
    gentle_color_fix: str = "none"
    """The colour fix (engine.pipelines.color_fix) applied to the gentle restorer's result
    before the two are compared: "wavelet" as the v2.6 pipeline applies it where the gate
    takes the gentle restorer; "none" (the default) compares the raw results, as v2.1-v2.3's
    gates were trained."""


@dataclass
class DreamClearConfig:
    model: str = "tiny"
    """"tiny" (seeded tiny components, for tests), "dreamclear" (the official files in the
    model store) or a PATH to a model folder in our layout."""
    caption: str = ""
    """Caption of photos without a `<photo stem>.txt` beside them."""
    caption_features: Path | None = None
    """Folder of cached T5 features, `<photo stem>.safetensors` with `embedding` (L,C) and
    `mask` (L); when set the text encoder is never run."""
    caption_dropout: float = 0.5
    """Probability that a sample's caption is replaced by the model's null caption."""
    gradient_checkpointing: bool = False
    """Recompute block activations in the backward pass (less memory, slower)."""
    num_train_timesteps: int = 1000
    """Length of the linear-beta diffusion schedule; t is drawn uniformly from it."""
    vlb_weight: float = 1.0
    """Weight of the variational-bound term (trains the learned-range variance)."""
    validation_sampling_steps: int = 20
    """Sampling steps of the validation restores (PSNR and images); 0: validation loss only."""


@dataclass
class GenIRPromptsConfig(FinetuneConfig):
    """The genir-prompts task: a GenIR run's `finetune` section (engine.genir.config), its
    folder and its base. `dreamclear train RUN/genir.toml` fills it from the run."""

    run: Path | None = None
    """The GenIR run folder: pairs are read from RUN/pairs."""
    base_model: Path | None = None
    """The SDXL base model folder (diffusers layout)."""


@dataclass
class QualityClassifierConfig:
    run: Path | None = None
    """The GenIR run folder whose pairs train the classifier (RUN/pairs) and which receives it
    (RUN/classifier); its genir.toml's `filter` section holds the classifier's settings.
    `dreamclear train RUN/genir.toml --task quality-classifier` sets it."""


@dataclass
class TrainConfig:
    task: TaskName
    """What to train: "starter" (restorer + degradation estimator), "starter-gate" (the
    blend of a starter's two restorers), "dreamclear",
    "genir-prompts" (GenIR's dual prompts) or "quality-classifier" (GenIR's filter); the
    GenIR tasks from a run's genir.toml."""
    max_steps: int = 1000
    """Optimiser steps of the whole run (`--max-steps` overrides it)."""
    max_minutes: float = 0.0
    """Stop (checkpoint, validate, export) after this many minutes of training in this
    process, even before max_steps; a resumed run counts afresh. 0: no time limit."""
    seed: int = 0
    """Seed of the model init, the data (crops and degradations) and the diffusion noise."""
    mixed_precision: MixedPrecision = "no"
    """accelerate's mixed precision: "no", "fp16" or "bf16"."""
    gradient_accumulation_steps: int = 1
    """Batches accumulated per optimiser step."""
    data: DataConfig = field(default_factory=DataConfig)
    """Training data."""
    optimisation: OptimisationConfig = field(default_factory=OptimisationConfig)
    """Optimiser and gradient clipping."""
    checkpointing: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Where and how often to save."""
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    """Validation on held-out photos."""
    starter: StarterConfig = field(default_factory=StarterConfig)
    """Settings of the starter task."""
    starter_gate: StarterGateConfig = field(default_factory=StarterGateConfig)
    """Settings of the starter-gate task."""
    dreamclear: DreamClearConfig = field(default_factory=DreamClearConfig)
    """Settings of the dreamclear task."""
    genir_prompts: GenIRPromptsConfig = field(default_factory=GenIRPromptsConfig)
    """Settings of the genir-prompts task (GenIR's dual-prompt fine-tuning)."""
    quality_classifier: QualityClassifierConfig = field(default_factory=QualityClassifierConfig)
    """Settings of the quality-classifier task (GenIR's filter)."""


# ----------------------------------------------------------------------------- parse


def load_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read, type-check and validate a TOML training config. `overrides` replace top-level
    fields or dotted ones ("checkpointing.output_dir") after parsing."""
    raw = read_toml(Path(path), "training config", hint="check the path")
    config = from_toml_table(TrainConfig, raw)
    return apply_overrides(config, **overrides)


def apply_overrides(config: TrainConfig, **overrides: Any) -> TrainConfig:
    """Replace fields named plainly or dotted ("checkpointing.output_dir"; None: keep),
    then validate."""
    for name, value in overrides.items():
        if value is not None:
            _set(config, name, value)
    validate(config)
    return config


def _set(config: Any, dotted: str, value: Any) -> None:
    *parents, name = dotted.split(".")
    for parent in parents:
        config = getattr(config, parent)
    setattr(config, name, value)


def validate(config: TrainConfig) -> None:
    """Value checks that types alone do not catch; each names its field."""
    data, ckpt, val = config.data, config.checkpointing, config.validation

    def require(ok: bool, name: str, message: str, hint: str = "") -> None:
        if not ok:
            raise ConfigError(f"Config field '{name}' {message}.", hint=hint)

    require(config.max_steps >= 1, "max_steps", "must be at least 1")
    require(config.max_minutes >= 0, "max_minutes", "must be >= 0 (0: no time limit)")
    require(config.gradient_accumulation_steps >= 1, "gradient_accumulation_steps", "must be >= 1")
    require(data.photos.is_dir(), "data.photos", f"is not a folder: {data.photos}")
    for name in data.validation_photos:
        require(
            (data.photos / name).is_file(),
            "data.validation_photos",
            f"names {name!r}, which is not in {data.photos}",
        )
    for name in ("crop_min", "crop_max"):
        size = getattr(data, name)
        require(size >= 16 and size % 16 == 0, f"data.{name}", "must be a multiple of 16")
    require(data.crop_max >= data.crop_min, "data.crop_max", "must be >= data.crop_min")
    require(data.scale in (1, 2, 4, 8), "data.scale", "must be 1, 2, 4 or 8")
    require(data.batch_size >= 1, "data.batch_size", "must be at least 1")
    require(data.samples_per_epoch >= data.batch_size, "data.samples_per_epoch", ">= batch_size")
    require(data.num_workers >= 0, "data.num_workers", "must be >= 0")
    require(0.0 <= data.clean_fraction <= 1.0, "data.clean_fraction", "must be in [0, 1]")
    require(
        0.0 <= data.single_stage_fraction <= 1.0 - data.clean_fraction,
        "data.single_stage_fraction",
        "must be in [0, 1 - data.clean_fraction]",
    )
    require(bool(data.clean_resize_modes), "data.clean_resize_modes", "must list one or more")
    require(0.0 <= data.clean_jpeg_fraction <= 1.0, "data.clean_jpeg_fraction", "must be in [0, 1]")
    require(
        1 <= data.detail_candidates <= MAX_DETAIL_CANDIDATES,
        "data.detail_candidates",
        f"must be a whole number from 1 to {MAX_DETAIL_CANDIDATES}",
    )
    for name in ("single_stage_jpeg_quality", "clean_jpeg_quality"):
        low, high = getattr(data, name)
        require(
            1 <= low <= high <= 100,
            f"data.{name}",
            "must be [low, high] with 1 <= low <= high <= 100",
        )
    for folder in data.more_photos:
        require(folder.is_dir(), "data.more_photos", f"names {folder}, which is not a folder")
    require(config.optimisation.learning_rate > 0, "optimisation.learning_rate", "must be > 0")
    opt = config.optimisation
    require(opt.decay_from_step >= 0, "optimisation.decay_from_step", "must be >= 0")
    require(
        opt.schedule == "constant" or opt.decay_from_step < config.max_steps,
        "optimisation.decay_from_step",
        f"must be below max_steps ({config.max_steps}) for the cosine decay to happen",
    )
    require(
        0 <= opt.final_learning_rate_ratio <= 1,
        "optimisation.final_learning_rate_ratio",
        "must be between 0 and 1",
    )
    require(ckpt.checkpoint_every >= 1, "checkpointing.checkpoint_every", "must be >= 1")
    require(ckpt.keep_last >= 1, "checkpointing.keep_last", "must be >= 1")
    require(val.every >= 0, "validation.every", "must be >= 0")
    require(val.crop >= 16 and val.crop % 16 == 0, "validation.crop", "must be a multiple of 16")
    if config.task == "starter":
        st = config.starter
        require(
            st.estimator_context_layers >= 0, "starter.estimator_context_layers", "must be >= 0"
        )
        require(st.num_conv >= 1, "starter.num_conv", "must be at least 1")
        require(st.estimator_learning_rate >= 0, "starter.estimator_learning_rate", "must be >= 0")
        require(0.0 <= st.ema_decay < 1.0, "starter.ema_decay", "must be in [0, 1)")
        require(
            st.train_restorer or st.train_estimator,
            "starter.train_estimator",
            "and starter.train_restorer are both false: nothing would train",
        )
        require(
            st.init_from is None or st.init_from.is_dir(),
            "starter.init_from",
            f"is not a folder: {st.init_from}",
            hint="give a starter model folder with restorer.safetensors and estimator/",
        )
        require(
            not st.deepen_restorer or (st.restorer == "compact" and st.init_from is not None),
            "starter.deepen_restorer",
            'needs starter.restorer = "compact" and a starter.init_from folder to deepen',
        )
        require(
            "/" not in st.init_restorer_file
            and "\\" not in st.init_restorer_file
            and st.init_restorer_file.endswith(".safetensors"),
            "starter.init_restorer_file",
            f"is not a .safetensors file name inside init_from: {st.init_restorer_file}",
        )
    if config.task == "starter-gate":
        gate = config.starter_gate
        folder = gate.experts_from
        require(
            folder is not None
            and (folder / "restorer.safetensors").is_file()
            and (folder / "restorer-gentle.safetensors").is_file(),
            "starter_gate.experts_from",
            f"is not a folder with restorer.safetensors and restorer-gentle.safetensors: {folder}",
            hint="export the all-round and the gentle restorers into one starter folder first",
        )
        require(
            gate.standardisation_crops >= 2, "starter_gate.standardisation_crops", "must be >= 2"
        )
        require(gate.features >= 1, "starter_gate.features", "must be >= 1")
        require(gate.hidden_units >= 0, "starter_gate.hidden_units", "must be >= 0")
    if config.task == "quality-classifier":
        run = config.quality_classifier.run
        require(
            run is not None and (run / "genir.toml").is_file(),
            "quality_classifier.run",
            f"is not a GenIR run folder: {run}",
            hint="train it with `dreamclear train RUN/genir.toml --task quality-classifier`",
        )
    if config.task == "dreamclear":
        dc = config.dreamclear
        require(0.0 <= dc.caption_dropout <= 1.0, "dreamclear.caption_dropout", "must be in [0, 1]")
        require(
            dc.caption_features is None or dc.caption_features.is_dir(),
            "dreamclear.caption_features",
            f"is not a folder: {dc.caption_features}",
        )
        require(data.crop_min % 64 == 0, "data.crop_min", "must be a multiple of 64 for dreamclear")
        require(data.crop_max % 64 == 0, "data.crop_max", "must be a multiple of 64 for dreamclear")
    if config.task == "genir-prompts":
        genir = config.genir_prompts
        require(
            genir.run is not None and genir.run.is_dir(),
            "genir_prompts.run",
            f"is not a folder: {genir.run}",
            hint="train a GenIR run with `dreamclear train RUN/genir.toml`",
        )
        require(
            genir.base_model is not None and (genir.base_model / "model_index.json").is_file(),
            "genir_prompts.base_model",
            f"is not a diffusers model folder: {genir.base_model}",
        )
        validate_finetune(genir, prefix="genir_prompts.")


# ----------------------------------------------------------------------------- write


def config_to_toml(config: TrainConfig) -> str:
    """The config as TOML that `load_config` reads back to an equal config."""
    return to_toml(config)
