"""Data collection and monitoring: providers -> pools -> services, with no knowledge of sockets.

``build_backend`` assembles every provider, pool and service from the settings and schedules them.
"""

from __future__ import annotations

from services.registry import Backend, build_backend, http_client

__all__ = ["Backend", "build_backend", "http_client"]
