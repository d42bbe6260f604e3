"""A coin's series out of stored market_data updates, and where each point's figures come from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson


def coin_quote(market: Mapping[str, Any], coin: str) -> tuple[str | None, str | None]:
    """The quote currency and source of ``coin``'s figures in a market_data payload: its own entry's, where the
    payload has per-coin entries that say them (``coins``), else the payload's; None where neither says."""
    coins = market.get("coins") or ()
    entry = (coins.get(coin) if isinstance(coins, Mapping) else
             next((c for c in coins if isinstance(c, Mapping) and c.get("id") == coin), None))
    entry = entry if isinstance(entry, Mapping) else {}
    currency = entry.get("quote_currency") or entry.get("currency") or market.get("quote_currency")
    source = entry.get("source") or market.get("source")
    return (currency if isinstance(currency, str) else None), (source if isinstance(source, str) else None)



def series_of(coin: str, texts: Iterable[bytes]) -> dict[str, list[Any]]:
    """``coin``'s price, volume and market cap from market_data updates (JSON texts, oldest first), one point per
    fetch, each with its quote currency and source (None where the stored update does not say)."""
    series: dict[str, list[Any]] = {"timestamps": [], "prices": [], "volumes": [], "market_caps": [],
                                    "quote_currencies": [], "sources": []}
    seen: set[str] = set()
    for text in texts:  # parsed one at a time: thousands of parsed updates at once strain the GC
        message = orjson.loads(text)
        data = message.get("data") or {}
        price = (data.get("prices") or {}).get(coin)
        when = data.get("timestamp") or message.get("timestamp")
        if price is None or when in seen:  # a stale update repeats values already in the series
            continue
        seen.add(when)
        currency, source = coin_quote(data, coin)
        series["timestamps"].append(when)
        series["prices"].append(price)
        series["volumes"].append((data.get("volumes") or {}).get(coin))
        series["market_caps"].append((data.get("market_caps") or {}).get(coin))
        series["quote_currencies"].append(currency)
        series["sources"].append(source)
    return series
