"""CPU throughput of GenIR's filter stage: images per second at a given size.

    python -m engine.bench.genir_filter --size 1024 --images 16

Builds a throwaway run folder holding `images` generated-looking images (the bundled photos,
centre-cropped and resized to size x size), a classifier of the default shape with random
weights (its speed does not depend on its weights) and no judge, then times the whole stage
(decode, classifier, faces, journals, verdicts) and, apart, the classifier and the face
detector alone on one decoded image. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

from dreamclear_studio_resources import resource_path


def _photos(size: int, count: int) -> list[Image.Image]:
    paths = sorted(p for p in resource_path("photos").iterdir() if p.suffix == ".jpg")
    images = []
    for index in range(count):
        with Image.open(paths[index % len(paths)]) as photo:
            side = min(photo.size)
            left, top = (photo.width - side) // 2, (photo.height - side) // 2
            square = photo.convert("RGB").crop((left, top, left + side, top + side))
            images.append(square.resize((size, size), Image.Resampling.LANCZOS))
    return images


def measure(size: int, count: int, *, repeats: int = 3) -> dict[str, float]:
    """Images per second of the whole stage, and per-image seconds of each scorer."""
    import torch

    from engine.genir.config import FilterConfig
    from engine.genir.faces import FaceDetector
    from engine.genir.filter_stage import run_filter_stage
    from engine.genir.quality_classifier import (
        ClassifierShape,
        QualityClassifier,
        load_classifier,
        save_classifier,
    )
    from engine.genir.run_folder import init_run, load_run

    images = _photos(size, count)
    defaults = FilterConfig()
    shape = ClassifierShape(
        defaults.classifier_width, defaults.classifier_crop, defaults.classifier_grid
    )
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "base").mkdir()
        (root / "base" / "model_index.json").write_text("{}")
        (root / "images").mkdir()
        run = root / "run"
        init_run(run, images=root / "images", base_model=root / "base")
        generated = run / "generate" / "images"
        generated.mkdir(parents=True)
        (run / "prompts").mkdir()
        with open(run / "prompts" / "prompts.jsonl", "w", encoding="utf-8") as file:
            for key, image in enumerate(images):
                image.save(generated / f"{key:06d}.png")
                file.write(json.dumps({"key": key, "index": key, "prompt": "a photo"}) + "\n")
        torch.manual_seed(0)
        save_classifier(
            run / "classifier", QualityClassifier(shape.width), shape, validation={}, settings={}
        )
        started = time.perf_counter()
        run_filter_stage(run, load_run(run))
        stage = time.perf_counter() - started
        started = time.perf_counter()
        run_filter_stage(run, load_run(run))
        redecide = time.perf_counter() - started
        classifier = load_classifier(run)
        detector = FaceDetector()
        classify, faces = [], []
        for image in images[:repeats]:
            started = time.perf_counter()
            classifier.probability(image)
            classify.append(time.perf_counter() - started)
            started = time.perf_counter()
            detector.count(image)
            faces.append(time.perf_counter() - started)
    return {
        "size": size,
        "images": count,
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count() or 0,
        "stage_images_per_s": round(count / stage, 2),
        "classifier_s": round(statistics.median(classify), 4),
        "faces_s": round(statistics.median(faces), 4),
        "redecide_s": round(redecide, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0, help="torch and OpenCV threads")
    args = parser.parse_args()
    if args.threads:
        import cv2
        import torch

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    print(json.dumps(measure(args.size, args.images)))


if __name__ == "__main__":
    main()
