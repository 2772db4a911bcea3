"""Streaming anomaly detectors: per-sensor models, calibration and the ensemble."""
