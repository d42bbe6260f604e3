"""Every setting of the server, read once from the environment and validated at start-up.

Nothing else in the project reads ``os.environ``: ``app.py`` builds one :class:`Settings` and passes it in.
Provider keys are :class:`~pydantic.SecretStr`, so they never appear in a ``repr``, a log line or a response.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SPACE_STORAGE = Path("/data")
#: A Hugging Face repo id: ``owner/name``.
REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")


class Redactor:
    """Scrubs secrets out of a text bound for a log line, a status or a published payload.

    The one place secrets are removed; built from :meth:`Settings.redactor` (or from one token)."""

    MASK = "***"

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, self.MASK)
        return text


def default_data_dir(space_storage: Path = SPACE_STORAGE) -> Path:
    """A Space's persistent storage is mounted at ``/data``: keep the history there when it is mounted and
    writable, so it survives restarts; otherwise ``./data``."""
    if space_storage.is_dir() and os.access(space_storage, os.W_OK):
        return space_storage
    return Path("data")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    # Serving
    host: str = "0.0.0.0"
    port: int = Field(7860, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = Field("text", description="json: one JSON object per line")

    # Data
    data_source: Literal["live", "replay"] = "live"
    interval_scale: float = Field(1.0, ge=0.01, le=100)  # below 0.01 replay mode would be a busy loop
    data_dir: Path = Field(default_factory=lambda: default_data_dir())
    market_coins: int = Field(100, ge=1, le=250)
    http_timeout: float = Field(10.0, gt=0, le=120)
    http_retries: int = Field(2, ge=0, le=5)

    # Data services
    news_max_articles: int = Field(60, ge=1, le=500)
    whale_threshold_usd: float = Field(1_000_000, gt=0, description="alert_threshold of whale_tracking")
    price_spread_threshold: float = Field(
        0.02, gt=0, le=0.5,
        description="market_data's cross-check: a coin whose providers' prices spread (highest - lowest) by more "
                    "than this fraction of their median (0.02: 2%) is flagged as disputed, in the stream, on the "
                    "dashboard and as a health event; a source within it of the median counts toward the quorum")

    # Sentiment (Hugging Face)
    sentiment_model: str = "mrm8488/distilroberta-finetuned-financial-news-sentiment-analysis"
    sentiment_batch_size: int = Field(16, ge=1, le=256)
    sentiment_batch_window_ms: float = Field(50, ge=0, le=5000)
    sentiment_max_texts: int = Field(64, ge=1, le=1000, description="texts per POST /api/sentiment")
    sentiment_max_chars: int = Field(2000, ge=10, le=100_000, description="characters per text")
    torch_threads: int = Field(1, ge=1, le=64, description="bound so inference never starves the event loop")
    hf_registry_query: str = "crypto sentiment"

    # Storage
    retention_days: float = Field(30, gt=0)
    # ~6 KB a market update once compressed: 50,000 of them (about 3 days at 5 s) is ~300 MB.
    retention_per_service: int = Field(50_000, ge=10)
    hf_backup_repo: str | None = None  # a dataset repo id, e.g. "me/crypto-monitor-history"
    hf_backup_interval: float = Field(3600, ge=60)

    # WebSocket limits
    ws_max_message_bytes: int = Field(64 * 1024, ge=256)
    ws_max_messages_per_second: int = Field(20, ge=1)
    # At least a /ws/all greeting: connection_established, subscription_confirmed and twelve snapshots at once.
    ws_send_queue: int = Field(64, ge=16, description="messages buffered per client before it is dropped")
    ws_per_message_deflate: bool = False
    ws_ping_interval: float = Field(20.0, gt=0)

    # Several replicas (REDIS_URL) and clients that resume
    redis_url: SecretStr | None = Field(None, description="redis://host:port/db: a group of replicas on Redis "
                                                          "Streams (one polls); unset: one process, in memory")
    redis_prefix: str = Field("cam", pattern=r"^[\w.-]{1,40}$", description="namespace of this group's Redis keys")
    leader_ttl: float = Field(10.0, ge=0.5, le=300, description="seconds the leader lease lasts unless renewed")
    stream_maxlen: int = Field(1000, ge=10, description="entries kept per service stream (MAXLEN ~)")
    resume_max_updates: int = Field(300, ge=1, le=10_000, description="updates replayed to a resuming client")
    replica_id: str | None = Field(None, max_length=100, description="this replica's id (default: host-pid)")

    # Optional provider keys (Space secrets). Absent means the keyed provider is skipped, never faked.
    coingecko_api_key: SecretStr | None = None
    etherscan_api_key: SecretStr | None = None
    cryptopanic_token: SecretStr | None = None
    cryptopanic_plan: Literal["developer", "growth", "enterprise"] = "developer"  # the token's plan, in its URL
    whale_alert_api_key: SecretStr | None = None
    cryptocompare_api_key: SecretStr | None = None
    coincap_api_key: SecretStr | None = None
    hf_token: SecretStr | None = None

    @field_validator("hf_backup_repo")
    @classmethod
    def _backup_repo(cls, value: str | None) -> str | None:
        value = (value or "").strip() or None
        if value is not None and not REPO_ID.fullmatch(value):
            raise ValueError("must be a dataset repo id like 'user/name'")
        return value

    def secrets(self) -> list[str]:
        """The secret values in use, so error texts can be scrubbed of them."""
        values = [
            self.coingecko_api_key,
            self.etherscan_api_key,
            self.cryptopanic_token,
            self.whale_alert_api_key,
            self.cryptocompare_api_key,
            self.coincap_api_key,
            self.hf_token,
        ]
        found = [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]
        redis_password = urlsplit(self.redis_url.get_secret_value()).password if self.redis_url else None
        return [*found, redis_password] if redis_password else found

    def redactor(self) -> Redactor:
        """Scrubs every secret in use out of a text."""
        return Redactor(self.secrets())

    def key(self, name: str) -> str | None:
        """The value of the provider key setting ``name``, or None when it is unset or empty."""
        secret = getattr(self, name)
        if secret is None:
            return None
        value: str = secret.get_secret_value().strip()
        return value or None


def describe_error(error: ValidationError) -> str:
    """One line naming the first bad variable, e.g. ``PORT: Input should be less than or equal to 65535``."""
    first = error.errors()[0]
    name = ".".join(str(part) for part in first["loc"]).upper() or "settings"
    if name.endswith(("_KEY", "_TOKEN")):
        return f"Invalid setting {name}: {first['msg']}"
    return f"Invalid setting {name}={first.get('input')!r}: {first['msg']}"
