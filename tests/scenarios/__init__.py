"""Whole-system scenarios: the real program in processes (kill, daemon end to end, the
digest promise, leadership, disk faults), in a browser, and whole-path fuzzing."""
