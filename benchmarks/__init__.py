"""Ratio benchmarks: every figure is zoo against a reference run in the same process."""
