"""The training degradations: synthetic damage that turns an HQ crop into an LQ image and labels.

- `second_order`: the Real-ESRGAN second-order degradation DreamClear trained with, and the
  clean downscale;
- `spatial`: spatially varying degradations with per-token strength maps;
- `records`: what a degradation did and its strengths in [0, 1]; `settings`: the random
  choices of the second-order model; `ops` and `kernels`: the operations and blur kernels
  they are built from.
"""
