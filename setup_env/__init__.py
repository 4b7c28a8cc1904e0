"""The first-run set-up of an installed DreamClear Studio (standard library only).

An installer ships the app's code without torch (several GB, and a different build for each
GPU). The first start, `dreamclear-studio --setup` or `--repair` builds a private environment
in the user's data folder with a pinned uv: torch for the GPU found (or CPU), then the other
dependencies. It builds beside the old environment and swaps only when all went well, and it
never writes outside its own `runtime` folder. How and why: docs/installers.md.
"""
