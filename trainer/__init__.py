"""Headless training on accelerate: `dreamclear train CONFIG.toml [--resume latest|PATH]`.

- `config`: typed dataclass configs, parsed and checked once (`load_config`).
- `data`: random HQ crops of a photo folder, degraded on the fly, reproducible per sample.
- `loop`: the one accelerate loop (checkpoints, exact resume, validation, export).
- `checkpoints`: which checkpoint folders are complete, CSV logs.
- `training_state`: a checkpoint's models, optimiser and RNG states, in files holding no code.
- `diffusion_loss`: improved-DDPM epsilon MSE + variational bound (learned-range variance).
- `tasks`: `starter` (restorer + degradation estimator) and `dreamclear` (control modules).
"""
