"""Helpers shared by the tests of every component, the harness and the bench.

Never imported by a service and never shipped in an image: a dev-only workspace
member, importable like any package (no sys.path tricks in conftest files).
"""
