"""What can go wrong when asking a provider, as a small exception tree the pools and the health record read.

Errors::

    ProviderError
    |-- ProviderTimeout        the provider did not answer in time
    |-- ProviderUnavailable    connection failed, circuit open, or the provider refuses us (401/403/451)
    |-- ProviderRateLimited    429/418 from the provider, or our own budget for it is spent
    |-- ProviderBadResponse    HTTP error status, not JSON, an error in the body (a ``normalize`` raising
    |                          AnswerError) or a shape ``normalize`` cannot read
    `-- ProviderMissingKey     a keyed provider without its key in the environment (never called)
"""

from __future__ import annotations


class ProviderError(Exception):
    kind = "error"
    retryable = False

    def __init__(self, provider: str, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message
        if retryable is not None:
            self.retryable = retryable


class ProviderTimeout(ProviderError):
    kind = "timeout"
    retryable = True


class ProviderUnavailable(ProviderError):
    kind = "unavailable"
    retryable = True


class ProviderRateLimited(ProviderError):
    kind = "rate_limited"

    def __init__(self, provider: str, message: str, retry_after: float | None = None, *, ours: bool = False) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after
        self.ours = ours  # our own budget held the call back: the provider itself said nothing


class ProviderBadResponse(ProviderError):
    kind = "bad_response"

    def __init__(self, provider: str, message: str, *, retryable: bool | None = None,
                 status: int | None = None) -> None:
        super().__init__(provider, message, retryable=retryable)
        self.status = status  # the HTTP status, when the failure was one


class ProviderMissingKey(ProviderError):
    kind = "missing_api_key"


class AnswerError(ValueError):
    """Raised by a pure ``normalize`` when a provider answered with an error instead of data (Kraken's
    ``error`` list, Etherscan's ``status: "0"``, a JSON-RPC ``error``): the pool counts it as a bad response."""
