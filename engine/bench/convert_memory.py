"""Peak resident memory of converting an official DreamClear checkpoint, old path and new.

A random checkpoint in the official layout (fp32, `official_layout`) is saved once; each
variant then converts it in a fresh subprocess (`convert_checkpoint_to_folder`, the code the
store runs), while a thread samples /proc/self/status every 5 ms for the anonymous (RssAnon:
allocations) and file-backed (RssFile: the memory-mapped checkpoint) resident memory.

- "cast after split": the old path, every split piece cloned in fp32, then all cast.
- "cast while splitting": ours, each tensor cast as it is taken.

Ratios are peak memory above the process's baseline (model code imported, nothing loaded),
divided by the size of the converted weights in the target dtype. Linux only (/proc).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

VARIANTS = ("cast after split", "cast while splitting")


@dataclass
class ConvertMemorySample:
    variant: str
    checkpoint_mb: float
    """Size of the fp32 .pth."""
    target_mb: float
    """Size of the converted safetensors weights (the target dtype)."""
    peak_anon_mb: float
    """Peak RssAnon above the baseline: allocated tensors."""
    peak_total_mb: float
    """Peak RssAnon + RssFile above the baseline (file pages are the mapped checkpoint)."""

    @property
    def anon_ratio(self) -> float:
        return self.peak_anon_mb / self.target_mb

    @property
    def total_ratio(self) -> float:
        return self.peak_total_mb / self.target_mb


def run(hidden: int = 720, layers: int = 4, dtype: str = "bf16") -> list[ConvertMemorySample]:
    import torch

    from engine.bench.official_layout import OfficialLayout, dreamclear_shapes, randomize

    with tempfile.TemporaryDirectory() as tmp:
        pth = Path(tmp) / "DreamClear-1024.pth"
        state = randomize(dreamclear_shapes(OfficialLayout(hidden=hidden, layers=layers)), 0)
        torch.save({"state_dict": state}, pth)
        del state
        samples = []
        for variant in VARIANTS:
            out = Path(tmp) / f"converted-{VARIANTS.index(variant)}"
            done = subprocess.run(
                [sys.executable, "-m", __name__, variant, str(pth), str(out), dtype],
                capture_output=True,
                text=True,
                check=True,
            )
            samples.append(ConvertMemorySample(**json.loads(done.stdout.splitlines()[-1])))
    return samples


def _rss_mb() -> tuple[float, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("RssAnon", "RssFile"):
            fields[name] = int(value.split()[0]) / 1024
    return fields["RssAnon"], fields["RssFile"]


def _child(variant: str, pth: Path, out: Path, dtype_name: str) -> dict:
    # Imported before the baseline: their memory is the same for both variants.
    import accelerate  # noqa: F401

    from engine.models.dreamclear_transformer import DreamClearTransformer2DModel  # noqa: F401
    from engine.weights import official_checkpoint
    from engine.weights.store import torch_dtype

    if variant == VARIANTS[0]:
        convert = official_checkpoint.convert_dreamclear_state_dict

        def cast_after(state_dict, dtype):
            return {k: v.to(dtype) for k, v in convert(state_dict).items()}

        official_checkpoint.convert_dreamclear_state_dict = cast_after

    base_anon, base_file = _rss_mb()
    peak = [0.0, 0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.005):
            anon, file = _rss_mb()
            peak[0] = max(peak[0], anon - base_anon)
            peak[1] = max(peak[1], anon + file - base_anon - base_file)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    official_checkpoint.convert_checkpoint_to_folder(pth, out, torch_dtype(dtype_name))
    stop.set()
    sampler.join()
    target = sum(f.stat().st_size for f in out.glob("*.safetensors"))
    sample_ = ConvertMemorySample(
        variant, pth.stat().st_size / 2**20, target / 2**20, peak[0], peak[1]
    )
    return asdict(sample_)


def markdown(samples: list[ConvertMemorySample]) -> str:
    rows = [
        "| variant | checkpoint MB (fp32) | converted MB | peak anon MB (x converted) "
        "| peak anon+file MB (x converted) |",
        "|---|---|---|---|---|",
    ]
    rows += [
        f"| {s.variant} | {s.checkpoint_mb:.0f} | {s.target_mb:.0f} | "
        f"{s.peak_anon_mb:.0f} ({s.anon_ratio:.2f}) | {s.peak_total_mb:.0f} ({s.total_ratio:.2f}) |"
        for s in samples
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    variant_arg, pth_arg, out_arg, dtype_arg = sys.argv[1:5]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(json.dumps(_child(variant_arg, Path(pth_arg), Path(out_arg), dtype_arg)))
