"""Training data: random HQ crops of a photo folder, degraded on the fly into LQ images.

Every sample is a pure function of (seed, epoch, index): the photo, the crop, the flip and
the degradation seed all come from `numpy.random.default_rng([seed, epoch, index])`. So a run
sees the same data every time, data loader workers change nothing, and a resumed run that
skips the batches it has already seen continues at exactly the same sample.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from engine.degradation import ops
from engine.degradation.ops import ResizeMode
from engine.degradation.second_order import degrade, downscale_clean
from engine.degradation.single_stage import (
    MILD_TO_MODERATE,
    SingleStageRanges,
    random_single_stage,
)
from engine.degradation.spatial import degrade_spatially_varying
from trainer.config import TrainConfig
from trainer.photos import Photo, load_photos

TOKEN_PX = 16


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float() / 255.0


LQKind = Literal["published", "single", "clean"]
"""How a sample's LQ is made: the published second-order degradation, one mild-to-moderate
stage (`random_single_stage`), or only a downscale (a box filter unless the config says more)."""


@dataclass(frozen=True)
class CameraJpeg:
    """How many clean samples are saved as a camera's JPEG after the downscale, and at what
    quality (uniform in the range, 4:2:0): the clean photo a user brings is such a file."""

    fraction: float = 0.0
    quality: tuple[int, int] = (90, 98)


NO_CAMERA_JPEG = CameraJpeg()


@dataclass(frozen=True)
class SampleDraw:
    photo: int
    """Index into the dataset's photos."""
    top: int
    left: int
    size: int
    flip: bool
    """Mirrored left to right."""
    seed: int
    """The degradation's seed."""
    kind: LQKind


class DegradedCrops(Dataset):
    """Samples {"hq" (3,S,S), "lq" (3,S/scale,S/scale) [standard only], "lq_varying" and
    "maps" (4,S/16,S/16) [spatially varying only], "photo" (index into `photos`)} with S a
    multiple of 16 in [crop_min, crop_max].

    Call `set_epoch` before iterating an epoch; it changes every sample's seed.
    """

    def __init__(
        self,
        photos: list[Photo],
        *,
        crop_min: int,
        crop_max: int,
        scale: int,
        seed: int,
        samples_per_epoch: int,
        spatially_varying: bool,
        standard: bool = True,
        clean_fraction: float = 0.0,
        single_stage_fraction: float = 0.0,
        clean_resize_modes: tuple[ResizeMode, ...] = ("area",),
        single_stage_ranges: SingleStageRanges = MILD_TO_MODERATE,
        clean_jpeg: CameraJpeg = NO_CAMERA_JPEG,
        detail_candidates: int = 1,
    ) -> None:
        self.photos = photos
        self.crop_sizes = list(range(crop_min, crop_max + 1, TOKEN_PX))
        self.scale = scale
        self.seed = seed
        self.samples_per_epoch = samples_per_epoch
        self.spatially_varying = spatially_varying
        self.standard = standard
        self.clean_fraction = clean_fraction
        self.single_stage_fraction = single_stage_fraction
        self.clean_resize_modes = tuple(clean_resize_modes)
        self.single_stage_ranges = single_stage_ranges
        self.clean_jpeg = clean_jpeg
        self.detail_candidates = detail_candidates
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        draw = self.draw(index)
        crop = self.photos[draw.photo].pixels[
            draw.top : draw.top + draw.size, draw.left : draw.left + draw.size
        ]
        if draw.flip:
            crop = crop[:, ::-1]
        sample = degrade_crop(
            to_tensor(crop),
            self.scale,
            draw.seed,
            self.spatially_varying,
            self.standard,
            kind=draw.kind,
            clean_resize_modes=self.clean_resize_modes,
            single_stage_ranges=self.single_stage_ranges,
            clean_jpeg=self.clean_jpeg,
        )
        return sample | {"photo": draw.photo}

    def draw(self, index: int) -> SampleDraw:
        """What sample `index` of this epoch is: its photo, crop, flip, degradation seed and
        LQ kind, all from one generator in a fixed order (changing the order changes every
        run's data)."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        photo = int(rng.integers(len(self.photos)))
        height, width = self.photos[photo].pixels.shape[:2]
        size = min(
            int(rng.choice(self.crop_sizes)), height - height % TOKEN_PX, width - width % TOKEN_PX
        )
        top = int(rng.integers(height - size + 1))
        left = int(rng.integers(width - size + 1))
        flip = bool(rng.random() < 0.5)
        seed = int(rng.integers(2**31))
        kind = self._kind(rng)
        if self.detail_candidates > 1:
            # The other candidates are drawn last, so a run with one keeps its sample stream;
            # on a tie the first drawn wins.
            positions = [(top, left)] + [
                (int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1)))
                for _ in range(self.detail_candidates - 1)
            ]
            pixels = self.photos[photo].pixels
            top, left = max(positions, key=lambda at: crop_detail(pixels, *at, size))
        return SampleDraw(photo, top, left, size, flip, seed, kind)

    def _kind(self, rng: np.random.Generator) -> LQKind:
        # Drawn only when asked for, so runs with only published degradations keep their
        # sample stream (and runs with only clean ones theirs: one draw either way).
        if not (self.clean_fraction or self.single_stage_fraction):
            return "published"
        draw = rng.random()
        if draw < self.clean_fraction:
            return "clean"
        if draw < self.clean_fraction + self.single_stage_fraction:
            return "single"
        return "published"


def crop_detail(pixels: np.ndarray, top: int, left: int, size: int) -> float:
    """Mean absolute horizontal and vertical difference of a crop's luma (the green channel,
    which carries most of it), in 8-bit levels: near 0 on flat sky, high on texture and edges."""
    luma = pixels[top : top + size, left : left + size, 1].astype(np.float32)
    return float(np.abs(np.diff(luma, axis=0)).mean() + np.abs(np.diff(luma, axis=1)).mean())


VARYING_SEED_OFFSET = 1 << 30
"""Keeps the spatially varying draw of a sample independent of its standard one."""
CAMERA_JPEG_STREAM = 3
"""Keeps a clean sample's JPEG draw apart from its other draws (and earlier runs' streams)."""


def camera_jpeg(lq: torch.Tensor, seed: int, jpeg: CameraJpeg) -> torch.Tensor:
    """`lq` saved as a JPEG for `jpeg.fraction` of the seeds (drawn from its own stream, so
    a run without camera JPEGs keeps its samples), else `lq` as it is."""
    if not jpeg.fraction:
        return lq
    rng = np.random.default_rng([seed, CAMERA_JPEG_STREAM])
    if rng.random() >= jpeg.fraction:
        return lq
    return ops.jpeg(lq, int(rng.integers(jpeg.quality[0], jpeg.quality[1] + 1)))


def degrade_crop(
    hq: torch.Tensor,
    scale: int,
    seed: int,
    spatially_varying: bool,
    standard: bool = True,
    *,
    kind: LQKind = "published",
    clean_resize_modes: tuple[ResizeMode, ...] = ("area",),
    single_stage_ranges: SingleStageRanges = MILD_TO_MODERATE,
    clean_jpeg: CameraJpeg = NO_CAMERA_JPEG,
) -> dict[str, torch.Tensor]:
    """{"hq", "lq"} of one HQ crop; with `spatially_varying` also "lq_varying" and its maps;
    without `standard` no "lq" (a run that trains only the estimator does not need it).

    "lq" comes from the published second-order pipeline (what a restorer must undo), from one
    mild-to-moderate stage (`kind="single"`, the damage most photos have), or is only a
    downscale (`kind="clean"`, an undamaged photo the restorer should leave alone; its filter
    one of `clean_resize_modes`, picked by `seed` so that the sample stream stays as it was; a
    share of them saved as a camera's JPEG, `clean_jpeg`); the single stage's ranges are
    `single_stage_ranges`;
    "lq_varying" is the same crop degraded with spatially varying strengths and "maps" says
    which strength each 16 px token got (what the degradation estimator learns).
    """
    sample = {"hq": hq}
    if standard:
        if kind == "clean":
            mode = clean_resize_modes[seed % len(clean_resize_modes)]
            sample["lq"] = camera_jpeg(downscale_clean(hq, scale, mode), seed, clean_jpeg)
        elif kind == "single":
            lq = random_single_stage(hq, scale=scale, seed=seed, ranges=single_stage_ranges)
            sample["lq"] = lq.float()
        else:
            sample["lq"] = degrade(hq, scale=scale, seed=seed).lq.float()
    if spatially_varying:
        varying = degrade_spatially_varying(
            hq, scale=scale, seed=seed + VARYING_SEED_OFFSET, token_px=TOKEN_PX
        )
        sample |= {"lq_varying": varying.lq.float(), "maps": varying.strength_maps.float()}
    return sample


def collate_crops(samples: list[dict], scale: int) -> dict[str, torch.Tensor]:
    """Stack samples, cutting every crop to the batch's smallest (top-left, so HQ, LQ and the
    16 px maps stay aligned); keys the samples lack are left out."""
    size = min(sample["hq"].shape[-1] for sample in samples)
    cuts = {
        "hq": size,
        "lq": size // scale,
        "lq_varying": size // scale,
        "maps": size // TOKEN_PX,
    }
    batch = {
        key: torch.stack([sample[key][..., :cut, :cut] for sample in samples])
        for key, cut in cuts.items()
        if key in samples[0]
    }
    batch["photo"] = torch.tensor([sample["photo"] for sample in samples])
    return batch


def validation_pairs(
    photos: list[Photo], *, crop: int, scale: int, seed: int, spatially_varying: bool
) -> list[dict]:
    """A fixed centre crop of each validation photo, degraded with a seed fixed per photo."""
    pairs = []
    for index, photo in enumerate(photos):
        height, width = photo.pixels.shape[:2]
        size = min(crop, height - height % TOKEN_PX, width - width % TOKEN_PX)
        top, left = (height - size) // 2, (width - size) // 2
        hq = to_tensor(photo.pixels[top : top + size, left : left + size])
        pairs.append(
            degrade_crop(hq, scale, seed + index, spatially_varying) | {"name": photo.name}
        )
    return pairs


def degraded_crops(
    config: TrainConfig, photos: list[Photo], *, spatially_varying: bool, standard: bool = True
) -> DegradedCrops:
    """`DegradedCrops` of `photos` as the config's data section and seed say (crop sizes,
    scale, epoch size, the mix of clean, single-stage and published damage)."""
    data = config.data
    return DegradedCrops(
        photos,
        crop_min=data.crop_min,
        crop_max=data.crop_max,
        scale=data.scale,
        seed=config.seed,
        samples_per_epoch=data.samples_per_epoch,
        spatially_varying=spatially_varying,
        standard=standard,
        clean_fraction=data.clean_fraction,
        single_stage_fraction=data.single_stage_fraction,
        clean_resize_modes=data.clean_resize_modes,
        single_stage_ranges=replace(MILD_TO_MODERATE, jpeg_quality=data.single_stage_jpeg_quality),
        clean_jpeg=CameraJpeg(data.clean_jpeg_fraction, data.clean_jpeg_quality),
        detail_candidates=data.detail_candidates,
    )


def validation_set(config: TrainConfig, *, spatially_varying: bool) -> list[dict]:
    """`validation_pairs` of the first `validation.num_images` held-out photos."""
    data = config.data
    names = data.validation_photos[: config.validation.num_images]
    if not names:
        return []
    photos = load_photos(data.photos, names=names, min_side=TOKEN_PX)
    return validation_pairs(
        photos,
        crop=config.validation.crop,
        scale=data.scale,
        seed=config.seed,
        spatially_varying=spatially_varying,
    )
