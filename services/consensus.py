"""Price consensus: the prices market_data shows, cross-checked against other providers' prices of the same moment.

Pure functions over normalised snapshots (no I/O, no clock): market_data fetches the checking providers on their
own cadence and hands their latest answers here with the primary one.

For each coin of the primary answer:

- its **sources** are the primary provider and every checking provider that priced the coin (same id and
  symbol) at the same moment: the two quotes' times (each quote's own, else its answer's) at most ``max_skew``
  apart. A price of another moment is no check: a recording of 2026 does not confirm one of 2023.
- **median** of the sources' prices, **spread** = (highest - lowest) / median in percent, **quorum** = how many
  sources are within ``threshold`` of the median (the primary included).
- **state**: ``unconfirmed`` when no other source priced it (shown, never silently trusted); ``disputed`` when
  the spread is over ``threshold`` (an alert); ``confirmed`` otherwise.
- **de-peg**: a USD stablecoin (:data:`~sources.providers.coins.USD_STABLECOINS`) more than :data:`PEG_BAND`
  off $1, either way, is flagged, unless only one *thin* source says so. A source is thin when the others put the
  coin on its peg (its own figure disagrees with theirs), or when it is a single exchange pair whose dollar volume
  over 24 h is unknown or under :data:`THIN_VOLUME_USD`. Only US dollar prices count for a peg: a USDT-quoted
  price of USDC is a ratio of two stablecoins.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from models.market import PriceAlert, PriceCheck, SourcePrice
from models.messages import iso
from models.states import PriceState
from sources.providers.coins import USD_STABLECOINS
from sources.providers.market import MarketSnapshot, Quote

#: How far from $1 a USD stablecoin may trade (either way) before it is a de-peg.
PEG_BAND = 0.01
#: A single exchange pair that traded less than this (USD, 24 h) is too thin to call a de-peg on its own.
THIN_VOLUME_USD = 1_000_000.0


@dataclass(frozen=True)
class Answer:
    """One provider's answer: its quotes, when it was fetched, and the moment it stands for (the provider's own
    time of the data, else the recording's capture time, else when it was fetched)."""

    source: str
    snapshot: MarketSnapshot
    moment: float
    fetched_at: float | None = None


@dataclass
class Verdicts:
    """The cross-check of one primary answer: each coin's check, the alerts, and which checks were comparable."""

    checks: dict[str, PriceCheck] = field(default_factory=dict)
    alerts: list[PriceAlert] = field(default_factory=list)
    compared: set[str] = field(default_factory=set)

    def count(self, state: PriceState) -> int:
        return sum(check.state is state for check in self.checks.values())


@dataclass(frozen=True)
class _Priced:
    source: str
    quote: Quote
    currency: Literal["USD", "USDT"]
    single_market: bool
    fetched_at: float | None


def cross_check(primary: Answer, checks: Sequence[Answer], *, threshold: float, max_skew: float) -> Verdicts:
    """Every coin of ``primary`` against the ``checks`` (answers of other providers). ``threshold`` is a fraction
    (0.02: 2%)."""
    verdicts = Verdicts()
    by_source = [(answer, {q.id: q for q in answer.snapshot.quotes}) for answer in checks
                 if answer.source != primary.source]
    for quote in primary.snapshot.quotes:
        own_time = quote.time if quote.time is not None else primary.moment
        priced = [_Priced(primary.source, quote, primary.snapshot.quote_currency, primary.snapshot.single_market,
                          primary.fetched_at)]
        elsewhere = 0  # other providers that priced it, at any moment
        for answer, quotes in by_source:
            other = quotes.get(quote.id)
            if other is None or other.symbol.upper() != quote.symbol.upper():
                continue
            elsewhere += 1
            other_time = other.time if other.time is not None else answer.moment
            if abs(other_time - own_time) <= max_skew:
                priced.append(_Priced(answer.source, other, answer.snapshot.quote_currency,
                                      answer.snapshot.single_market, answer.fetched_at))
                verdicts.compared.add(answer.source)
        check = _check(priced, threshold, elsewhere)
        verdicts.checks[quote.id] = check
        verdicts.alerts.extend(_alerts(quote, check))
    return verdicts


def _check(priced: list[_Priced], threshold: float, elsewhere: int) -> PriceCheck:
    prices = [p.quote.price for p in priced]
    median = statistics.median(prices)
    spread = (max(prices) - min(prices)) / median * 100
    agrees = [abs(price - median) <= threshold * median for price in prices]
    others = [SourcePrice(source=p.source, price=p.quote.price, quote_currency=p.currency,
                          time=iso(p.quote.time), fetched_at=iso(p.fetched_at), agrees=ok)
              for p, ok in zip(priced[1:], agrees[1:], strict=True)]
    if len(priced) == 1:
        state = PriceState.UNCONFIRMED
        note = ("no other provider priced it at the same moment" if elsewhere
                else "no other provider priced it")
    else:
        state = PriceState.DISPUTED if spread > threshold * 100 else PriceState.CONFIRMED
        note = None
    depeg, depeg_note = _depeg(priced) if priced[0].quote.id in USD_STABLECOINS else (False, None)
    return PriceCheck(state=state, median=median, spread_pct=round(spread, 4), quorum=sum(agrees),
                      sources=len(priced), others=others, depeg=depeg, note=depeg_note or note)


def _depeg(priced: list[_Priced]) -> tuple[bool, str | None]:
    """Whether a USD stablecoin is off its peg by the sources' account (their median outside the band, said by
    more than one thin source), and a note when some source puts it off its peg but that is not enough."""
    usd = [p for p in priced if p.currency == "USD"]
    off = [p for p in usd if abs(p.quote.price - 1.0) > PEG_BAND]
    if not off:
        return False, None
    median = statistics.median(p.quote.price for p in usd)
    if abs(median - 1.0) <= PEG_BAND:
        return False, f"{len(off)} of {len(usd)} providers put it off its peg, the median does not: not a de-peg"
    if len(off) > 1:
        return True, None
    (alone,) = off
    others_on_peg = len(usd) > 1
    volume = alone.quote.volume_24h
    thin_pair = alone.single_market and (volume is None or volume < THIN_VOLUME_USD)
    if others_on_peg or thin_pair:
        why = "the other providers put it on its peg" if others_on_peg else "a single thin exchange pair"
        return False, f"only {alone.source} puts it at ${alone.quote.price:.4f} ({why}): not a de-peg"
    return True, None


def _alerts(quote: Quote, check: PriceCheck) -> list[PriceAlert]:
    alerts = []
    if check.state is PriceState.DISPUTED:
        listed = ", ".join(f"{s.source} {s.price:.6g}" for s in check.others)
        alerts.append(PriceAlert(
            kind="spread", coin=quote.id, symbol=quote.symbol, median=check.median, spread_pct=check.spread_pct,
            message=f"{quote.symbol}: providers disagree by {check.spread_pct:.2f}% ({quote.price:.6g} shown; "
                    f"{listed}); {check.quorum} of {check.sources} agree with the median {check.median:.6g}"))
    if check.depeg:
        off = (check.median - 1.0) * 100
        alerts.append(PriceAlert(
            kind="depeg", coin=quote.id, symbol=quote.symbol, median=check.median, spread_pct=check.spread_pct,
            message=f"{quote.symbol} is off its $1 peg: {check.median:.4f} ({off:+.2f}%) by the median of "
                    f"{check.sources} source{'s' if check.sources > 1 else ''}"))
    return alerts
