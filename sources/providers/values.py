"""Readers for the values in a provider's answer, which no normaliser can take on trust.

Each returns the value in the type we use, or None (or raises AnswerError, for the ``require_*`` ones) when the
field is absent or not what it should be: a strange field is left out, never turned into 0.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from typing import Any

from models.messages import parse_iso
from sources.errors import AnswerError


def number(value: Any) -> float | None:
    """A finite JSON number or numeric string (as many providers send them) as float."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def positive(value: Any) -> float | None:
    """A number above zero. Providers write 0 for a volume, market cap or price they do not know."""
    result = number(value)
    return result if result is not None and result > 0 else None


#: A plain decimal number as text ("1662940800", "1.5e9"), as opposed to ISO-8601 text.
_NUMERIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")

#: The largest whole number every JSON reader (JavaScript's too) keeps exactly; orjson cannot even write one
#: above 2**64, so a larger "count" would make the whole payload unpublishable. No real count comes near it.
SAFE_INTEGER = 2**53


def count(value: Any) -> int | None:
    """A non-negative whole number up to :data:`SAFE_INTEGER`: an int, a float without fraction, or a string of
    ASCII digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        # isdigit() alone also accepts "²" and other digits int() refuses; 16 digits reach past SAFE_INTEGER
        whole = int(value) if value.isascii() and value.isdigit() and len(value) <= 16 else None
        return whole if whole is not None and whole <= SAFE_INTEGER else None
    result = number(value)
    return int(result) if result is not None and 0 <= result <= SAFE_INTEGER and result.is_integer() else None


def unix_seconds(value: Any) -> float | None:
    """A Unix time in seconds (number or numeric string). 1e11 s is the year 5138: that would be milliseconds."""
    result = number(value)
    return result if result is not None and 0 < result < 1e11 else None


#: Bitcoin's genesis block (2009-01-03 18:15:05 UTC) opened the day before which no crypto provider's data can be
#: dated: an earlier time is a bug (a block time of a test chain, a 0 read as 1970), not data.
EARLIEST_DATA_TIME = datetime(2009, 1, 3, tzinfo=UTC).timestamp()
#: How far ahead of our clock a provider's time may be (clock skew, a publisher's time zone slip); beyond it the
#: time is wrong, and a wrong time must not make old data look new.
MAX_FUTURE_SECONDS = 86400.0


def provider_time(value: Any, *, now: float | None = None) -> float | None:
    """A provider's own time of its data, as Unix seconds: a number of seconds (or a numeric string), or ISO-8601
    text (a time without a zone is UTC). None when it is neither, falls before 2009-01-03 or lies more than a day
    after ``now`` (wall time by default). The one reader of provider times: milliseconds (``1.7e12``) are not
    seconds and give None, so a normaliser that gets them must divide first."""
    if isinstance(value, str) and not _NUMERIC.fullmatch(value.strip()):
        moment = parse_iso(value)
        seconds = moment.timestamp() if moment is not None else None
    else:
        seconds = number(value)
    if seconds is None:
        return None
    latest = (time.time() if now is None else now) + MAX_FUTURE_SECONDS
    return seconds if EARLIEST_DATA_TIME <= seconds <= latest else None


def json_number(value: Any) -> float | None:
    """A finite JSON number only: for providers that send numbers, a string there means the shape changed."""
    return number(value) if isinstance(value, int | float) else None


def json_count(value: Any) -> int | None:
    """A non-negative whole JSON number only (no strings)."""
    return count(value) if isinstance(value, int | float) else None


def require_list(raw: Any, what: str) -> list[Any]:
    if not isinstance(raw, list):
        raise AnswerError(f"expected a list of {what}, got {type(raw).__name__}: {str(raw)[:120]}")
    return raw


def require_object(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise AnswerError(f"{what}: expected an object, got {type(raw).__name__}: {str(raw)[:120]}")
    return raw


def objects(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON list; nothing when it is not a list."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
