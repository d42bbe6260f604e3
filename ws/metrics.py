"""The WebSocket side of ``GET /metrics``: read at scrape time from counters the hub and the manager keep anyway.

Nothing here runs on the fan-out path: :class:`WebSocketCollector` is asked by the registry when Prometheus
scrapes, and reads plain ints (the hub's per-service counts, the manager's disconnect counts, each protocol's
error count) and each open connection's queue length. The send-queue depth histogram is therefore a snapshot of
the queues at scrape time, not a record of every message.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from models.catalog import ENDPOINTS, SERVICE_NAMES
from ws.hub import Counts
from ws.manager import ConnectionManager

PREFIX = "crypto_monitor_"
#: Every WebSocket path and service is shown from the start, at 0: a series that appears only with its first
#: client would make ``sum()`` empty and ``rate()`` miss the first increments.
PATHS = tuple(path for endpoint in ENDPOINTS for path in (endpoint.path, *endpoint.aliases))


def depth_buckets(queue_size: int) -> list[int]:
    """Upper bounds for the queue depth: 0, then powers of two up to the queue's size (where a client is dropped)."""
    bounds = [0]
    bound = 1
    while bound < queue_size:
        bounds.append(bound)
        bound *= 2
    bounds.append(queue_size)
    return bounds


class WebSocketCollector(Collector):
    """Connections, subscriptions, updates, queues, disconnects and inbound messages of one server."""

    def __init__(self, manager: ConnectionManager) -> None:
        self.manager = manager
        self.bounds = depth_buckets(manager.limits.send_queue)

    def collect(self) -> Iterator[Metric]:
        yield from self._connections()
        yield from self._updates()
        yield self._queue_depth()
        yield from self._inbound()

    def _connections(self) -> Iterator[Metric]:
        manager = self.manager
        by_endpoint = dict.fromkeys(PATHS, 0)
        for conn in manager.connections.values():
            by_endpoint[conn.endpoint] = by_endpoint.get(conn.endpoint, 0) + 1
        connections = GaugeMetricFamily(PREFIX + "ws_connections", "Open WebSocket connections, by endpoint path",
                                        labels=["endpoint"])
        for endpoint, count in sorted(by_endpoint.items()):
            connections.add_metric([endpoint], count)
        yield connections
        yield CounterMetricFamily(PREFIX + "ws_connections_opened", "WebSocket connections accepted since start",
                                  value=manager.total_connected)
        disconnects = CounterMetricFamily(
            PREFIX + "ws_disconnects",
            "WebSocket connections closed since start, by reason: the server closed a slow consumer (1013), a "
            "client over the rate limit (1008) or sending an oversized message (1009); normal: anything else",
            labels=["reason"])
        for reason, count in manager.disconnects().items():
            disconnects.add_metric([reason], count)
        yield disconnects
        subscriptions = GaugeMetricFamily(PREFIX + "ws_subscriptions", "Connections subscribed to each service",
                                          labels=["service"])
        counts = manager.hub.subscription_counts()
        for service in dict.fromkeys((*SERVICE_NAMES, *sorted(counts))):  # "system" too, once subscribed
            subscriptions.add_metric([service], counts.get(service, 0))
        yield subscriptions

    def _updates(self) -> Iterator[Metric]:
        help_texts = {
            "published": "Updates published by each service since start",
            "delivered": "Updates queued to a subscriber, per service (one per subscriber)",
            "dropped": "Updates not queued because the subscriber's queue was full (it is then disconnected)",
        }
        families = {kind: CounterMetricFamily(PREFIX + f"updates_{kind}", text, labels=["service"])
                    for kind, text in help_texts.items()}
        by_service = self.manager.hub.counts()
        for service in dict.fromkeys((*SERVICE_NAMES, *sorted(by_service))):  # anything else published, too
            counts = by_service.get(service) or Counts()
            families["published"].add_metric([service], counts.published)
            families["delivered"].add_metric([service], counts.delivered)
            families["dropped"].add_metric([service], counts.dropped)
        yield from families.values()

    def _queue_depth(self) -> Metric:
        bounds = self.bounds
        counts = [0] * (len(bounds) + 1)
        total = 0
        for conn in self.manager.connections.values():
            depth = conn.queued
            counts[bisect.bisect_left(bounds, depth)] += 1
            total += depth
        cumulative, buckets = 0, []
        for bound, count in zip([*map(floatToGoString, bounds), "+Inf"], counts, strict=True):
            cumulative += count
            buckets.append((bound, float(cumulative)))
        return HistogramMetricFamily(
            PREFIX + "ws_send_queue_depth",
            f"Messages waiting in each open connection's send queue at scrape time (a connection is dropped at "
            f"{self.manager.limits.send_queue})", buckets=buckets, sum_value=total)

    def _inbound(self) -> Iterator[Metric]:
        messages = CounterMetricFamily(PREFIX + "ws_inbound_messages", "Messages received from clients since start, "
                                       "by endpoint path", labels=["endpoint"])
        errors = CounterMetricFamily(PREFIX + "ws_inbound_errors", "Error replies to client messages since start "
                                     "(bad JSON, unknown action or service, rate limit), by endpoint path",
                                     labels=["endpoint"])
        inbound = self.manager.inbound()
        for endpoint in dict.fromkeys((*PATHS, *sorted(inbound))):
            received, failed = inbound.get(endpoint, (0, 0))
            messages.add_metric([endpoint], received)
            errors.add_metric([endpoint], failed)
        yield messages
        yield errors
