"""Models kept loaded between jobs: the next job with the same model starts at once.

Keys say what was loaded and where (e.g. ("restorer", "starter", "cpu", "torch.float32")); at
most `max_warm` stay loaded, the least recently used is dropped first and its device memory
given back. Used only from the job worker's thread, so it needs no lock.
"""

from __future__ import annotations

import collections
import gc
import logging
from collections.abc import Callable, Hashable
from typing import Any

logger = logging.getLogger(__name__)


class WarmModels:
    def __init__(self, max_warm: int = 1) -> None:
        self.max_warm = max_warm
        self._models: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The model under `key`, calling `load()` (after making room) when it is not warm."""
        model = self._models.get(key)
        if model is not None:
            self._models.move_to_end(key)
            return model
        while self._models and len(self._models) >= self.max_warm:
            old, _ = self._models.popitem(last=False)
            logger.info("unloading %s to make room", old)
            release_memory()
        logger.info("loading %s", key)
        model = load()
        self._models[key] = model
        return model

    def clear(self) -> None:
        self._models.clear()
        release_memory()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._models


def release_memory() -> None:
    """Collect dropped models and hand cached CUDA blocks back to the driver."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
