"""Every state word the server publishes or acts on, as an enum: one vocabulary for streams, sockets and the UI.

They are ``StrEnum``s, so on the wire (and compared with a plain string) each is just its value.
"""

from __future__ import annotations

from enum import StrEnum


class DataStatus(StrEnum):
    """How fresh a payload (or one of its sections) is."""

    OK = "ok"
    PARTIAL = "partial"  # only on payloads made of sections: some have data, some none
    STALE = "stale"  # the last good values, with their age
    NO_DATA = "no_data"  # every provider failed and nothing was ever fetched


class SourceStatus(StrEnum):
    """How one provider's latest attempt in a pool went."""

    OK = "ok"
    ERROR = "error"
    RATE_LIMITED = "rate_limited"
    WAITING = "waiting"  # our own rate budget for it is spent until its next call is due (no failure)
    CIRCUIT_OPEN = "circuit_open"
    MISSING_API_KEY = "missing_api_key"
    NOT_TRIED = "not_tried"


class Availability(StrEnum):
    """Whether a call to a provider may go out now, and if not, why not."""

    AVAILABLE = "available"
    MISSING_API_KEY = "missing_api_key"
    RATE_LIMITED = "rate_limited"
    CIRCUIT_OPEN = "circuit_open"


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    DISABLED = "disabled"


class HealthDetail(StrEnum):
    OK = "ok"
    SLOW = "slow"
    ERROR = "error"
    RATE_LIMITED = "rate_limited"
    CIRCUIT_OPEN = "circuit_open"
    MISSING_API_KEY = "missing_api_key"
    UNCHECKED = "unchecked"


class LimiterVerdict(StrEnum):
    """What the inbound rate limiter says of a client's message."""

    OK = "ok"
    WARN = "warn"  # the first message over the limit: answered with an error
    DROP = "drop"  # over the limit again: not processed
    CLOSE = "close"  # it kept going: the socket is closed with 1008


class PriceState(StrEnum):
    """How a coin's price stands against other providers' prices of the same moment (market_data's cross-check)."""

    CONFIRMED = "confirmed"  # another source priced it, and every source is within the threshold
    DISPUTED = "disputed"  # the sources' prices spread over the threshold
    UNCONFIRMED = "unconfirmed"  # no other source priced it at the same moment: shown, never silently trusted
