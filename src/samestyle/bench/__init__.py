"""Benchmark helpers shared by ``benchmarks/`` scripts and tests (synthetic catalogues)."""
