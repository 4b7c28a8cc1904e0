"""The engine's image I/O entry points (see docs/contracts.md); the work is in the modules named."""

from engine.imaging.alpha import upscale_alpha
from engine.imaging.atomic import unique_output_path
from engine.imaging.load import LoadedImage, LoadLimits, load_image
from engine.imaging.metadata import ImageMetadata
from engine.imaging.save import save_image

__all__ = [
    "ImageMetadata",
    "LoadLimits",
    "LoadedImage",
    "load_image",
    "save_image",
    "unique_output_path",
    "upscale_alpha",
]
