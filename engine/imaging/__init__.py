"""Image I/O (metadata, bit depth, alpha, atomic writes) and pixel-level helpers."""
