"""One GenIR dataset build, as a typed config read from the run folder's `genir.toml`.

Every field has a docstring: `dreamclear genir init` writes them as the config's comments.
Where the paper gives no number the docstring says "Our choice" and why. `load_config` checks
everything before any work (unknown fields, types, values, paths) and names the bad field.
Relative paths are taken from the run folder, so a run folder can be moved with its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.genir.faces import CASCADES, KNOWN_CASCADES
from engine.genir.prompts import combinations
from engine.typed_config import ConfigError, from_toml_table, read_toml

PAPER_NEGATIVE_WORDS = ("cartoon", "painting", "over-smooth", "dirty")
"""The negative-prompt words the paper names (its list is elided with "...")."""

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
    captions: str = ""
    """A captions file (UTF-8, one `relative/path.png<TAB>caption` line per image, paths from
    the images folder); empty for none. A sidecar `NAME.txt` next to an image wins over it."""


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
class GenIRConfig:
    images: Path
    """Folder of high-quality positive images (searched recursively)."""
    base_model: Path
    """SDXL base model folder in diffusers layout (model_index.json, unet/, vae/, ...)."""
    seed: int = 0
    """Run seed: every item's seed is derived from it and the item's key, so a resumed or
    sharded run makes the same items."""
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    """Scene descriptions (stage 3's prompts), from the built-in template generator."""
    pairs: PairsConfig = field(default_factory=PairsConfig)
    """Stage 1: negatives made from the positives with SDXL img2img (SDEdit)."""
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    """Stage 3: images from the fine-tuned model under the learned prompts."""
    filter: FilterConfig = field(default_factory=FilterConfig)
    """Stage 3: which generated images are kept."""


def load_config(path: Path | str) -> GenIRConfig:
    """Read, type-check and validate a run's config; relative paths are from its folder."""
    path = Path(path)
    raw = read_toml(path, "GenIR config", hint="start a run with `dreamclear genir init`")
    config = from_toml_table(GenIRConfig, raw)
    config.images = path.parent / config.images
    config.base_model = path.parent / config.base_model
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
        hint="give an SDXL folder in diffusers layout (`dreamclear genir tiny-base` makes one)",
    )
    require(config.prompts.count >= 1, "prompts.count", "must be at least 1")
    limit = combinations(people=config.prompts.people)
    require(config.prompts.count <= limit, "prompts.count", f"must be at most {limit}")
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
