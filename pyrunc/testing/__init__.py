"""Helpers for pyrunc's tests, benchmarks and conformance harness. Never imported by the runtime."""
