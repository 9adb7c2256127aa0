"""Benchmarks: the Locust gRPC/HTTP bench, the cold/warm runner, and the
pipeline's large-feed memory benchmark. Each prints numbers; none is a timed
unit test."""
