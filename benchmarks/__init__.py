"""Benchmarks of pytest-idempotency (not tests): ``python benchmarks/run.py``."""
