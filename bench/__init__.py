"""Benchmarks of geocommuns: synthetic data, serving and harmonisation harnesses (see bench/README.md)."""
