"""Telemetry shared by both services: structured logs, traces, metrics (OpenTelemetry)."""
