"""A threaded HTTP server on a free loopback port, alive for a ``with`` block.

The base of the stand-ins that play Google's side in tests: the metadata server
(ID tokens for the console) and a token issuer with its certificates (for the
pipeline's own verification).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LoopbackHttpStub:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._httpd.server_address[1]}"

    def metadata_env(self) -> dict[str, str]:
        """Point google-auth's metadata client here: both names, since it pings the
        IP to detect the metadata server and asks the host for the rest."""
        return {"GCE_METADATA_HOST": self.host, "GCE_METADATA_IP": self.host}

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
