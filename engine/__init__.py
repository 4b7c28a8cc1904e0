"""DreamClear Studio engine: everything that touches torch (models, pipelines, weights, images)."""
