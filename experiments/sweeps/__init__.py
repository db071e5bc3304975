"""Sweep files: `get_sweep(arg=None) -> list[experiments.runs.Run]`, run with launch/sweep.py."""
