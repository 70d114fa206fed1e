"""Benchmarks: each prints figures and ends with one summary line; never timed assertions."""
