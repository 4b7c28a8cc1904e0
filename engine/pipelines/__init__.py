"""Pipelines: restoration (DreamClear sampling with tiling and colour fix)."""
