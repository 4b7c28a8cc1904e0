"""Choose the latent tile size from the memory that is free (`tile_size="auto"`).

Estimate, for a square latent tile of side s (latent cells) and patch p, n = (s/p)^2 tokens,
batch b = 2 (conditional + unconditional), hidden width d, h heads, e bytes per element:

    attention   = b * h * n^2 * e            (the score matrix, if the math SDPA kernel runs)
    activations = b * n * d * e * 36         (3 streams: base, LQ, reference branches, each
                                              about 12 widths live at once: qkv, MLP x4, ...)
    need        = 1.5 * (attention + activations)

Weights are already resident, so they are not counted: the free memory is what is left
(CUDA: `torch.cuda.mem_get_info` plus memory PyTorch has cached but not used; CPU: the
available RAM). At full size (1024 model: d = 1152, 16 heads, p = 2, bf16) a 128 tile needs
about 2.6 GB. The largest candidate tile (<= the default) whose estimate fits in 80 % of the
free memory is chosen, else the smallest candidate. This is only a first guess: an
out-of-memory error during denoising still halves the tile and retries.
"""

from __future__ import annotations

import os

import torch

DEFAULT_LATENT_TILE = 128
TILE_CANDIDATES = (128, 112, 96, 80, 64, 48, 32)
SAFETY = 1.5
USABLE_FRACTION = 0.8


def available_memory_bytes(device: torch.device) -> int:
    """Free memory for activations on `device`, in bytes."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached)
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def estimate_denoise_bytes(
    tile: int,
    *,
    patch_size: int,
    hidden_size: int,
    num_heads: int,
    bytes_per_element: int,
    batch: int = 2,
) -> int:
    """Peak activation memory of one denoiser call on a `tile` x `tile` latent (see module doc)."""
    tokens = (tile // patch_size) ** 2
    attention = batch * num_heads * tokens * tokens * bytes_per_element
    activations = batch * tokens * hidden_size * bytes_per_element * 36
    return int(SAFETY * (attention + activations))


def auto_latent_tile(
    free_bytes: int,
    *,
    patch_size: int,
    hidden_size: int,
    num_heads: int,
    bytes_per_element: int,
    batch: int = 2,
) -> int:
    """The largest candidate tile whose estimate fits in the usable share of `free_bytes`."""
    budget = USABLE_FRACTION * free_bytes
    for tile in TILE_CANDIDATES:
        need = estimate_denoise_bytes(
            tile,
            patch_size=patch_size,
            hidden_size=hidden_size,
            num_heads=num_heads,
            bytes_per_element=bytes_per_element,
            batch=batch,
        )
        if need <= budget:
            return tile
    return TILE_CANDIDATES[-1]
