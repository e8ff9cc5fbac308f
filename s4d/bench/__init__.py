"""Benchmarks: ``python -m s4d.bench engine`` and ``python -m s4d.bench s3``."""
