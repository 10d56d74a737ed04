"""The pure scoring core: model file, conditions, durations, decay and scores; no I/O, no clock."""
