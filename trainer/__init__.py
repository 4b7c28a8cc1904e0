"""Headless training on accelerate (filled in by the trainer issue)."""
