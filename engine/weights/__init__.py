"""Weights: the model store, its manifest, hub downloads and official-checkpoint conversion."""
