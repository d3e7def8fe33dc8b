"""Benchmarks: each module prints measured figures side by side with its ceiling or peer."""
