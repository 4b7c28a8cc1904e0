"""Train only the starter's degradation estimator and report the estimator bench on held-out photos.

A quick check that `degrade_spatially_varying`'s strength maps are learnable (issue target:
Spearman > 0.7 per channel). Trains on random crops of every photo in --photos except the
held-out ones, evaluates like `dreamclear bench estimator` (photo i gets seed i, centre crop 256)
and saves the estimator with `save_pretrained` to --out.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_estimator_check.py --minutes 8
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from engine.bench.quality import bicubic_upscale, centre_crop
from engine.imaging.degradations import STRENGTH_CHANNELS, degrade_spatially_varying
from engine.imaging.io import load_image
from engine.metrics.rank_correlation import spearman
from engine.models.starter import DegradationEstimator
from trainer.data import DegradedCrops, collate_crops, load_photos
from trainer.tasks.starter import upscale_to

logger = logging.getLogger("train_estimator_check")

HELD_OUT = ("bridge.jpg", "ladybird.jpg", "storm.jpg", "sunset.jpg", "wood.jpg")


def held_out_set(
    folder: Path, crop: int = 256, scale: int = 4
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(upscaled LQ, maps) of each held-out photo, exactly as engine/bench/estimator.py makes them."""
    pairs = []
    for index, name in enumerate(HELD_OUT):
        hq = centre_crop(load_image(folder / name).rgb, crop)
        degraded = degrade_spatially_varying(hq, scale=scale, seed=index)
        pairs.append((bicubic_upscale(degraded.lq, scale), degraded.strength_maps))
    return pairs


@torch.no_grad()
def evaluate(estimator: DegradationEstimator, pairs) -> dict[str, float]:
    estimator.eval()
    predicted = np.concatenate(
        [estimator(up[None])[0].reshape(4, -1).numpy() for up, _ in pairs], 1
    )
    applied = np.concatenate([maps.reshape(4, -1).numpy() for _, maps in pairs], 1)
    estimator.train()
    return {
        c: round(spearman(predicted[i], applied[i]), 3) for i, c in enumerate(STRENGTH_CHANNELS)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=Path("resources/photos"))
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=192)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--context-layers", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)

    photos = load_photos(args.photos, exclude=HELD_OUT, min_side=args.crop)
    data = DegradedCrops(
        photos,
        crop_min=args.crop,
        crop_max=args.crop,
        scale=4,
        seed=args.seed,
        samples_per_epoch=10**7,
        spatially_varying=True,
    )
    loader = DataLoader(
        data,
        batch_size=args.batch,
        num_workers=args.workers,
        collate_fn=lambda samples: collate_crops(samples, 4),
    )
    pairs = held_out_set(args.photos)
    estimator = DegradationEstimator(
        channels=args.channels, num_layers=args.layers, context_layers=args.context_layers
    )
    optimiser = torch.optim.Adam(estimator.parameters(), lr=args.lr)
    deadline = time.monotonic() + 60 * args.minutes
    step = 0
    for step, batch in enumerate(loader, 1):
        lq_up = upscale_to(batch["lq_varying"], batch["hq"].shape[-2:])
        loss = F.mse_loss(estimator(lq_up), batch["maps"])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        done = time.monotonic() > deadline
        if step % args.eval_every == 0 or done:
            logger.info(
                "step %d mse %.4f spearman %s", step, loss.item(), evaluate(estimator, pairs)
            )
        if done:
            break
    if args.out is not None:
        estimator.save_pretrained(args.out)
        logger.info("saved %s", args.out)


if __name__ == "__main__":
    main()
