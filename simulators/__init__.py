"""Device simulators."""
