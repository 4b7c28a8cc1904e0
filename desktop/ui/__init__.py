"""The desktop window's widgets. Pure Qt + numpy: images and maps come from files."""
