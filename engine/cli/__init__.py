"""Engine-side command-line subcommands (restore, models, bench); wired by dreamclear.cli."""
