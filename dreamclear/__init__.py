"""The `dreamclear` command: one entry point that wires the engine's and trainer's subcommands."""

__version__ = "0.1.0"
