"""Measuring and improving retrieval quality: evaluation harness, calibration, end-to-end runs."""
