"""Job kinds the engine runs, and the journal that lets long jobs resume."""
