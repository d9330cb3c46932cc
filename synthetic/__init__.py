"""Deterministic synthetic data: a province's worth of events for tests, demos and benchmarks."""
