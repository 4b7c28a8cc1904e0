"""Model definitions: the DreamClear transformer, text encoders, captioners, removers."""
