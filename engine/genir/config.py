"""One GenIR dataset build, as a typed config read from the run folder's `genir.toml`.

Every field has a docstring: `dreamclear genir init` writes them as the config's comments.
Where the paper gives no number the docstring says "Our choice" and why. `load_config` checks
everything before any work (unknown fields, types, values, paths) and names the bad field.
Relative paths are taken from the run folder, so a run folder can be moved with its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from engine.genir.faces import CASCADES, KNOWN_CASCADES
from engine.genir.model_paths import resolve_model
from engine.genir.prompts import combinations
from engine.typed_config import ConfigError, from_toml_table, read_toml

PROMPT_SOURCES = ("template", "llm")
PAPER_NEGATIVE_WORDS = ("cartoon", "painting", "over-smooth", "dirty")
"""The negative-prompt words the paper names (its list is elided with "...")."""
PAPER_POSITIVE_INIT_WORDS = ("4k", "highly detailed", "professional")
"""The positive prompts the paper initialises its positive tokens from (elided with "...")."""
PAPER_NEGATIVE_INIT_WORDS = ("deformation", "low quality", "over-smooth")
"""The negative prompts the paper initialises its negative tokens from (elided with "...")."""

PAPER_JUDGE_INSTRUCTION = (
    "You are an AI visual assistant, and you are analyzing a single image. Your task is to check"
    " the image for any anomalies, irregularities, or content that does not align with common"
    " sense or normal expectations. Additionally, identify any inappropriate content such as"
    " personal privacy violations or NSFW material. If the image does not contain any of the"
    " aforementioned issues, it has passed the inspection. Please determine whether this image"
    " has passed the inspection (answer yes/no) and provide your reasoning."
)
"""The paper's instruction to its multimodal judge of generated images, word for word."""


@dataclass
class PromptsConfig:
    count: int = 1000
    """Scene descriptions to generate (prompts rejected by the privacy filter are not counted).
    The paper has a language model write about one million; our default is a first run's size."""
    people: bool = False
    """Allow a distant crowd or a figure seen from behind in some outdoor scenes. Our choice:
    off, since no generated image may show an identifiable person."""
    source: str = "template"
    """Where scene descriptions come from: "template" (the built-in seeded generator, offline,
    exactly reproducible) or "llm" (a local instruct language model asked with the paper's
    privacy instruction, as the paper does; needs `llm_model`). Both pass the privacy filter."""
    llm_model: str = ""
    """The local instruct language model (transformers, local files only): a folder, or a
    model of the store such as "genir-llm" (`dreamclear models list`). Empty for none."""
    llm_lines: int = 20
    """Descriptions asked of the LLM per call (one call is one chunk of the journal). Our
    choice: enough for variety within a call, short enough for a small model to follow."""
    llm_judge: bool = False
    """Also ask `llm_model` to delete inappropriate prompts with the paper's instruction, after
    the privacy filter. Our choice: off (the rules already reject what they can name)."""


@dataclass
class PairsConfig:
    sdedit_strength: float = 0.6
    """How far SDXL img2img (SDEdit) moves a positive image to make its negative (0..1; with N
    steps it runs int(N * strength) of them; 1 ignores the image). Not given by the paper; our
    choice: enough to blur and smear texture while keeping the layout. To be measured."""
    steps: int = 30
    """Denoising steps of the img2img schedule. Not given; our choice (SDXL's usual range)."""
    negative_words: tuple[str, ...] = (
        *PAPER_NEGATIVE_WORDS,
        "low quality",
        "blurry",
        "deformation",
        "jpeg artifacts",
        "noisy",
    )
    """Words of the negative prompt that steers img2img toward bad images. The paper names
    "cartoon, painting, ..., over-smooth, dirty"; the words after those four are our choice."""
    size: int = 1024
    """Side of the square working size in pixels (a multiple of 8): each positive is resized
    (shorter side) and centre-cropped to it, and its negative made at it. Our choice: SDXL's
    native size (64 for the tiny test base)."""
    min_side: int = 512
    """Positives whose shorter side is below this many pixels are skipped and reported (the
    paper asks for high-resolution positives but gives no bound; our choice)."""
    captioner: str = ""
    """A local image-to-text model (transformers, local files only) that captions positives
    with no sidecar or listed caption: a folder, or a model of the store such as
    "genir-captioner". Empty for none (then every positive needs a written caption)."""
    captions: str = ""
    """A captions file (UTF-8, one `relative/path.png<TAB>caption` line per image, paths from
    the images folder); empty for none. A sidecar `NAME.txt` next to an image wins over it."""


@dataclass
class FinetuneConfig:
    steps: int = 2000
    """Optimiser steps. The paper trains 5 days on 16 A100 at batch 256 (steps not given);
    our choice: a one-GPU run of a few hours, enough for tokens and a LoRA to settle."""
    batch_size: int = 4
    """Images per step per process (positives and negatives mixed). The paper: 256 over 16
    GPUs; our choice fits one 24-40 GB GPU at 1024 px with LoRA in bf16."""
    gradient_accumulation: int = 1
    """Batches accumulated per optimiser step (batch_size x this x GPUs is the paper's 256)."""
    token_learning_rate: float = 1e-3
    """Adam learning rate of the new token rows. Not given; our choice (textual inversion's
    usual range, 5e-4 to 5e-3)."""
    cross_attention_learning_rate: float = 1e-4
    """Learning rate of the cross-attention weights: LoRA's usual 1e-4 (our choice); for
    cross_attention = "full" use about 1e-5."""
    cross_attention: Literal["lora", "full", "none"] = "lora"
    """How the UNet's cross-attention (attn2) layers are refined with the tokens: "lora" (peft
    LoRA on to_q/to_k/to_v/to_out.0: small files, one GPU), "full" (every attn2 weight, about
    half a billion parameters in SDXL) or "none" (tokens only). The paper refines the
    attention blocks without saying how; our default: LoRA."""
    lora_rank: int = 16
    """Rank of the LoRA matrices (alpha = rank, so scale 1). Our choice."""
    vectors_per_token: int = 4
    """Embedding vectors of the positive and of the negative token (<genir-pos-0..k-1>,
    <genir-neg-0..k-1>). The paper says "tokens" without a count; our choice."""
    resolution: int = 1024
    """Training crop side in pixels (a multiple of 8): each pair image is resized (shorter
    side) and randomly cropped to it, and SDXL's size conditioning says so. Not given; our
    choice: SDXL's native size (64 for the tiny test base)."""
    positive_init_words: tuple[str, ...] = (
        *PAPER_POSITIVE_INIT_WORDS,
        "high resolution",
        "sharp focus",
        "photorealistic",
    )
    """Words whose token embeddings initialise the positive vectors, cycling through their
    tokens' rows. The first three are the paper's; the rest our choice."""
    negative_init_words: tuple[str, ...] = (
        *PAPER_NEGATIVE_INIT_WORDS,
        "blurry",
        "noisy",
        "jpeg artifacts",
    )
    """Words whose token embeddings initialise the negative vectors (as above). The first
    three are the paper's; the rest our choice."""
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    """accelerate's mixed precision. "bf16" on a GPU that has it halves the frozen weights'
    memory (trained weights stay float32); our default "no" runs anywhere, CPU included."""
    gradient_checkpointing: bool = False
    """Recompute the UNet's activations in the backward pass: less memory, about 30% slower.
    Our choice: off; turn it on for 1024 px on a 24 GB GPU."""
    checkpoint_every: int = 250
    """Save a resumable checkpoint every this many steps (and at the end). Our choice."""
    sample_images: int = 2
    """At the end, generate this many images under the learned prompts (the captions of the
    first pairs; 25 steps, CFG 7) into RUN/finetune/train/validation/, to look at. 0: none."""


@dataclass
class GenerationConfig:
    resolution: int = 1024
    """Side of the generated square images in pixels (a multiple of 8). The paper says only
    "high-resolution"; our choice: SDXL's native size."""
    steps: int = 30
    """Sampling steps per image. Not given; our choice."""
    cfg: float = 7.0
    """Classifier-free guidance weight w in eps = eps_neg + w (eps_pos - eps_neg), between the
    learned positive and negative prompts. The paper uses CFG but gives no weight; our choice."""
    batch_size: int = 1
    """Images generated at once. The same seeds at another batch size give other bytes, so the
    generation stage journals it: a run resumed with another batch size is refused."""


@dataclass
class FilterConfig:
    quality_threshold: float = 0.5
    """Keep a generated image when the quality classifier (trained on positives vs negatives)
    gives it at least this probability of being a positive (0..1). Not given; our choice."""
    max_faces: int = 0
    """Reject an image in which the face detector finds more faces than this. Our choice: 0,
    no identifiable people (DESIGN.md section 6)."""
    judge: bool = False
    """Also ask a multimodal judge (the paper's image instruction) to reject semantic errors
    and inappropriate content. Off by default: it needs a local multimodal model."""
    judge_instruction: str = PAPER_JUDGE_INSTRUCTION
    """What the judge is asked about each image (answer yes/no and why): the paper's image
    instruction, word for word."""
    classifier_crop: int = 128
    """Side in pixels of the square crops the quality classifier sees, at the image's own
    resolution (blur and smearing are pixel-scale; images smaller than this are enlarged).
    Our choice (the paper gives no architecture)."""
    classifier_grid: int = 3
    """An image's quality is the mean probability over a grid of grid x grid crops spread
    evenly over it. Our choice: 9 crops of 128 px see about 14% of a 1024 px image."""
    classifier_width: int = 32
    """Channels of the classifier's first layer (doubled at each of its four stages, at most
    8x). Our choice: a small CNN trained from scratch, no downloaded weights."""
    classifier_steps: int = 1500
    """Optimiser steps of `dreamclear train RUN/genir.toml --task quality-classifier`
    (`--max-steps` overrides it). Our choice."""
    classifier_batch_size: int = 8
    """Images per training batch (four random crops of each, positives and negatives drawn
    alike). Our choice."""
    classifier_learning_rate: float = 1e-3
    """AdamW learning rate of the classifier. Our choice."""
    classifier_holdout: float = 0.1
    """Share of the pairs (both images of each) held out of training to measure the
    classifier's accuracy (at least one pair). Our choice."""
    face_detection_side: int = 512
    """The face detector works on the image scaled so its longer side is this (faces smaller
    than 1/32 of it are not looked for). Our choice: see docs/genir.md."""
    face_min_neighbors: int = 3
    """Overlapping raw detections a face needs (OpenCV's default is 3; lower: more faces and
    more false alarms). Our choice: the default, with three cascades (see docs/genir.md)."""
    face_cascades: tuple[str, ...] = CASCADES
    """OpenCV Haar cascades that look for faces (any finding one counts). Our choice: the
    three with the best recall measured; leaving out haarcascade_frontalface_default.xml
    loses about 4 in 100 faces but two thirds of the false alarms on textures (docs/genir.md)."""


@dataclass
class ExportConfig:
    lq_pairs: bool = False
    """Also write an LQ image of every exported image, made by our training degradation (the
    published Real-ESRGAN second-order pipeline), for trainers that read ready-made pairs. Our
    choice: off, since `dreamclear train` degrades the HQ images on the fly."""
    lq_scale: int = 4
    """How many times smaller an LQ image is than its HQ image: 1, 2, 4 or 8 (each divides
    `generation.resolution`, a multiple of 8). 4: the scale DreamClear and Real-ESRGAN train at."""
    validation_images: int = 2
    """Accepted images held out of training as validation photos in the starter training config
    the export writes (train-starter.toml); the last ones by key. Our choice."""


@dataclass
class GenIRConfig:
    images: Path
    """Folder of high-quality positive images (searched recursively)."""
    base_model: Path
    """SDXL base model folder in diffusers layout (model_index.json, unet/, vae/, ...), or the
    name of an installed store model such as "sdxl-base" (`dreamclear models list`)."""
    seed: int = 0
    """Run seed: every item's seed is derived from it and the item's key, so a resumed or
    sharded run makes the same items."""
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    """Scene descriptions (stage 3's prompts), from the built-in template generator or a local
    instruct LLM."""
    pairs: PairsConfig = field(default_factory=PairsConfig)
    """Stage 1: negatives made from the positives with SDXL img2img (SDEdit)."""
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    """Stage 3: images from the fine-tuned model under the learned prompts."""
    filter: FilterConfig = field(default_factory=FilterConfig)
    """Stage 3: which generated images are kept."""
    export: ExportConfig = field(default_factory=ExportConfig)
    """The accepted images as a training set (RUN/export), optionally with LQ pairs."""
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    """Stage 2: dual-prompt fine-tuning (learned positive and negative tokens and the
    UNet's cross-attention), a trainer task: `dreamclear genir finetune RUN`."""


def load_config(path: Path | str) -> GenIRConfig:
    """Read, type-check and validate a run's config; relative paths are from its folder."""
    path = Path(path)
    raw = read_toml(path, "GenIR config", hint="start a run with `dreamclear genir init`")
    config = from_toml_table(GenIRConfig, raw)
    config.images = path.parent / config.images
    config.base_model = resolve_model(config.base_model, path.parent)
    for section, name in ((config.prompts, "llm_model"), (config.pairs, "captioner")):
        if getattr(section, name):
            setattr(section, name, str(resolve_model(getattr(section, name), path.parent)))
    if config.pairs.captions:
        config.pairs.captions = str(path.parent / config.pairs.captions)
    validate(config)
    return config


def validate(config: GenIRConfig) -> None:
    """Value and path checks that types alone do not catch; each names its field."""

    def require(ok: bool, name: str, message: str, hint: str = "") -> None:
        if not ok:
            raise ConfigError(f"Config field '{name}' {message}.", hint=hint)

    require(config.images.is_dir(), "images", f"is not a folder: {config.images}")
    require(config.base_model.is_dir(), "base_model", f"is not a folder: {config.base_model}")
    require(
        (config.base_model / "model_index.json").is_file(),
        "base_model",
        f"has no model_index.json: {config.base_model}",
        hint="give an SDXL folder in diffusers layout (`dreamclear genir tiny-base` makes one) "
        "or an installed store model (`dreamclear models import` takes a folder or a file)",
    )
    prompts = config.prompts
    require(prompts.count >= 1, "prompts.count", "must be at least 1")
    require(
        prompts.source in PROMPT_SOURCES,
        "prompts.source",
        f"must be one of {', '.join(PROMPT_SOURCES)}",
    )
    if prompts.source == "template":
        limit = combinations(people=prompts.people)
        require(prompts.count <= limit, "prompts.count", f"must be at most {limit}")
    require(1 <= prompts.llm_lines <= 1000, "prompts.llm_lines", "must be in [1, 1000]")
    require(
        bool(prompts.llm_model) or (prompts.source != "llm" and not prompts.llm_judge),
        "prompts.llm_model",
        'is needed by prompts.source = "llm" and prompts.llm_judge',
        hint="name a local instruct model folder or a store model (`dreamclear models list`)",
    )
    for name, value in (
        ("prompts.llm_model", prompts.llm_model),
        ("pairs.captioner", config.pairs.captioner),
    ):
        require(
            not value or Path(value).is_dir(),
            name,
            f"is not a folder or an installed model: {value}",
            hint="see `dreamclear models list`",
        )
    pairs, generation, filters = config.pairs, config.generation, config.filter
    require(0 < pairs.sdedit_strength <= 1, "pairs.sdedit_strength", "must be in (0, 1]")
    require(pairs.steps >= 1, "pairs.steps", "must be at least 1")
    require(
        int(pairs.steps * pairs.sdedit_strength) >= 1,
        "pairs.sdedit_strength",
        "times pairs.steps must be at least 1 (img2img would run no step)",
    )
    require(all(w.strip() for w in pairs.negative_words), "pairs.negative_words", "has a blank")
    require(
        pairs.size >= 64 and pairs.size % 8 == 0, "pairs.size", "must be a multiple of 8, >= 64"
    )
    require(pairs.min_side >= 1, "pairs.min_side", "must be at least 1")
    require(
        not pairs.captions or Path(pairs.captions).is_file(),
        "pairs.captions",
        f"is not a file: {pairs.captions}",
    )
    require(
        generation.resolution >= 64 and generation.resolution % 8 == 0,
        "generation.resolution",
        "must be a multiple of 8, at least 64",
    )
    require(generation.steps >= 1, "generation.steps", "must be at least 1")
    require(generation.cfg >= 1, "generation.cfg", "must be at least 1 (1: no guidance)")
    require(generation.batch_size >= 1, "generation.batch_size", "must be at least 1")
    require(0 <= filters.quality_threshold <= 1, "filter.quality_threshold", "must be in [0, 1]")
    require(filters.max_faces >= 0, "filter.max_faces", "must be >= 0")
    require(filters.judge_instruction.strip() != "", "filter.judge_instruction", "is blank")
    require(
        filters.classifier_crop >= 32 and filters.classifier_crop % 16 == 0,
        "filter.classifier_crop",
        "must be a multiple of 16, at least 32",
    )
    require(filters.classifier_grid >= 1, "filter.classifier_grid", "must be at least 1")
    require(filters.classifier_width >= 4, "filter.classifier_width", "must be at least 4")
    require(filters.classifier_steps >= 1, "filter.classifier_steps", "must be at least 1")
    require(filters.classifier_batch_size >= 1, "filter.classifier_batch_size", "must be >= 1")
    require(filters.classifier_learning_rate > 0, "filter.classifier_learning_rate", "must be > 0")
    require(0 < filters.classifier_holdout < 1, "filter.classifier_holdout", "must be in (0, 1)")
    require(filters.face_detection_side >= 64, "filter.face_detection_side", "must be >= 64")
    require(filters.face_min_neighbors >= 1, "filter.face_min_neighbors", "must be at least 1")
    require(
        bool(filters.face_cascades) and set(filters.face_cascades) <= set(KNOWN_CASCADES),
        "filter.face_cascades",
        f"must name one or more of {', '.join(KNOWN_CASCADES)}",
    )
    export = config.export
    require(export.lq_scale in (1, 2, 4, 8), "export.lq_scale", "must be 1, 2, 4 or 8")
    require(export.validation_images >= 0, "export.validation_images", "must be >= 0")
    validate_finetune(config.finetune)


def validate_finetune(finetune: FinetuneConfig, prefix: str = "finetune.") -> None:
    """Checks of the fine-tuning settings (also run by the trainer on its copy of them)."""

    def require(ok: bool, name: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"Config field '{prefix}{name}' {message}.")

    for name in ("steps", "batch_size", "gradient_accumulation", "lora_rank"):
        require(getattr(finetune, name) >= 1, name, "must be at least 1")
    require(finetune.vectors_per_token >= 1, "vectors_per_token", "must be at least 1")
    require(finetune.checkpoint_every >= 1, "checkpoint_every", "must be at least 1")
    require(finetune.sample_images >= 0, "sample_images", "must be >= 0")
    for name in ("token_learning_rate", "cross_attention_learning_rate"):
        require(getattr(finetune, name) > 0, name, "must be > 0")
    require(
        finetune.resolution >= 64 and finetune.resolution % 8 == 0,
        "resolution",
        "must be a multiple of 8, at least 64",
    )
    for name in ("positive_init_words", "negative_init_words"):
        words = getattr(finetune, name)
        require(bool(words) and all(w.strip() for w in words), name, "needs words, no blank")
