"""Benchmarks (run by hand; they print ratios against peers measured in the same run)."""
