"""Stand-ins that the desktop's tests and benchmarks share (shipped, so benchmarks run from an
installed app too). Torch-free: they import nothing of the engine but `engine.protocol`."""
