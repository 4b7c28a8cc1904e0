"""Benchmarks behind `dreamclear bench`: numbers measured side by side in one run."""
