"""Benchmarks of the desktop app, engine-free (`python -m desktop.bench.app`, `... .compare`);
their numbers are in docs/benchmarks.md."""
