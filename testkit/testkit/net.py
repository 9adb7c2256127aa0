"""Loopback ports for servers the tests, the harness and the bench start.

One implementation for the whole repository: envctl's, which picks the ports of a
docker environment's services (envctl may not import testkit; testkit may use envctl).
"""

from __future__ import annotations

from envctl.local import pick_free_port as free_port

__all__ = ["free_port"]
