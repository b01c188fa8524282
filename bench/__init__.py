"""Benchmarks (not timed tests): run with ``python -m bench.<name>`` from the project root."""
