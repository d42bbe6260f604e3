"""News providers: publishers' RSS/Atom feeds (keyless) and CryptoPanic (keyed), normalised to :class:`Article`.

Each feed is its own provider (own budget, breaker and health), declared once in :data:`FEEDS`. Its body is
fetched through the fetcher and handed, as bytes, to feedparser: feedparser is never given a URL or a path, so
it never fetches or opens anything itself. ``normalize_*`` are pure and raise :class:`AnswerError` when a feed
answers with something that is not a usable feed: an HTML page (a consent wall, a Cloudflare block), an empty
body, XML that is not well-formed (often a body cut off in transit), or a feed without items.

Article URLs are kept as published minus tracking parameters; :func:`url_key` and :func:`title_key` are the
normalised forms the news service de-duplicates on.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import html
import io
import re
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import feedparser

from models.messages import iso, parse_iso
from models.news import Article
from sources.errors import AnswerError, ProviderBadResponse
from sources.fetcher import Fetcher, Provider
from sources.limits import Rate
from sources.providers.values import provider_time

SUMMARY_CHARS = 300
MAX_ITEMS_PER_FEED = 100  # feeds carry 10 to 50; a runaway feed must not flood the store
MAX_CATEGORIES = 8
# Labels a feed puts on every item (CoinDesk's "News") or WordPress's default: they say nothing about the article.
GENERIC_CATEGORIES = frozenset({"news", "latest news", "uncategorized", "uncategorised"})
TRACKING_PARAMS = frozenset({"fbclid", "gclid", "dclid", "igshid", "mc_cid", "mc_eid", "_ga", "ref_src"})


# -- pure helpers ---------------------------------------------------------------------------------------

def _is_tracking(name: str) -> bool:
    return name.lower().startswith("utm_") or name.lower() in TRACKING_PARAMS


def clean_url(url: str) -> str:
    """``url`` without tracking parameters (``utm_*``, ``fbclid``, ...) and fragment, otherwise as published."""
    parts = urlsplit(url.strip())
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if not _is_tracking(k)]
    query = parts.query if len(kept) == len(pairs) else urlencode(kept)  # untouched unless something went
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def url_key(url: str) -> str:
    """The form two links to one article share: no scheme, host lower-case without ``www.`` or a default
    port, no trailing slash, no tracking parameters, the rest of the query sorted."""
    parts = urlsplit(clean_url(url))
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return f"{host}{parts.path.rstrip('/')}" + (f"?{query}" if query else "")


def title_key(title: str) -> str:
    """A headline reduced to lower-case words, so curly and straight quotes or spacing do not matter."""
    return " ".join(re.sub(r"[^\w\s]", " ", html.unescape(title).casefold()).split())


def article_id(url: str | None, title: str) -> str:
    basis = f"url:{url_key(url)}" if url else f"title:{title_key(title)}"
    return hashlib.sha1(basis.encode()).hexdigest()[:16]


class _TextExtractor(HTMLParser):
    BLOCKS = frozenset({"p", "br", "div", "li", "ul", "ol", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6",
                        "blockquote", "figure", "figcaption", "img", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden = max(0, self._hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def plain_text(markup: str) -> str:
    """The text of an HTML fragment, entities decoded and whitespace collapsed."""
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return " ".join("".join(extractor.parts).split())


def clip(text: str, limit: int = SUMMARY_CHARS) -> str:
    """``text`` cut at a word boundary to about ``limit`` characters, marked with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    if " " in head:
        head = head.rsplit(" ", 1)[0]
    return head.rstrip(" ,;:-–—") + "…"


def clean_categories(labels: Iterable[Any]) -> list[str]:
    """Tags as readable labels: whitespace collapsed, entities decoded, generic ones and repeats (any case)
    dropped, at most :data:`MAX_CATEGORIES`."""
    seen: set[str] = set()
    cleaned: list[str] = []
    for raw in labels:
        if not isinstance(raw, str):
            continue
        label = " ".join(html.unescape(raw).split())
        key = label.casefold()
        if not label or len(label) > 48 or key in GENERIC_CATEGORIES or key in seen:
            continue
        seen.add(key)
        cleaned.append(label)
    return cleaned[:MAX_CATEGORIES]


# A document whose first element is <html> (after an XML declaration or comments), not a feed quoting HTML.
_HTML_START = re.compile(r"\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])",
                         re.IGNORECASE | re.DOTALL)

_EMPTY_DC_DESCRIPTION = re.compile(rb"<dc:description\s*/>|<dc:description>\s*</dc:description>")


def _html_title(head: str) -> str | None:
    match = re.search(r"<title[^>]*>(.*?)</title>", head, re.IGNORECASE | re.DOTALL)
    return " ".join(html.unescape(match.group(1)).split())[:80] if match else None


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


# -- providers ------------------------------------------------------------------------------------------

class NewsProvider(Provider):
    category = "news"

    async def fetch_articles(self, fetcher: Fetcher) -> list[Article]:
        raise NotImplementedError


class RssFeed(NewsProvider):
    """A publisher's feed. ``base_url`` is the feed itself, so a probe reads (and checks) the feed."""

    endpoints = ("",)  # the feed itself
    rate = Rate(2, 60, burst=3)  # the news service reads each feed once a minute; feeds update a few times an hour
    probe_path = ""
    probe_interval = 900.0
    slow_ms = 3000.0  # whole feeds are 20 to 100 kB

    async def fetch_articles(self, fetcher: Fetcher) -> list[Article]:
        response = await fetcher.request(self, "GET", "")
        return await self.read(response.content)

    async def read(self, body: bytes) -> list[Article]:
        """:meth:`normalize_feed` in a worker thread: feedparser is pure Python and takes tens of milliseconds
        on a real feed (about 90 ms for 50 items with their full text), seven feeds at once every minute; on the
        event loop that would hold every WebSocket client's updates meanwhile."""
        return await asyncio.to_thread(self.normalize_feed, body, source=self.name, feed=self.id, url=self.base_url)

    async def probe(self, fetcher: Fetcher) -> None:
        # A 200 carrying a Cloudflare page is no healthier than a 403: read what came back.
        response = await fetcher.request(self, "GET", "", probe=True)
        try:
            await self.read(response.content)
        except AnswerError as exc:
            error = ProviderBadResponse(self.id, str(exc))
            fetcher.record_failure(self, error)
            raise error from None

    @staticmethod
    def normalize_feed(raw: bytes | str, *, source: str, feed: str, url: str = "") -> list[Article]:
        """Every usable item of an RSS or Atom body; entries without a title or a link are skipped.

        ``source`` is the publisher's name, ``feed`` the provider id, ``url`` the feed's own URL (relative
        links resolve against it)."""
        parsed = RssFeed._parse(raw.encode() if isinstance(raw, str) else raw, feed)
        articles = []
        for entry in parsed.entries[:MAX_ITEMS_PER_FEED]:
            try:
                article = RssFeed._article(entry, source=source, feed=feed, base=url)
            except ValueError:  # one malformed item (a link with a bad port, say) is skipped, not the feed
                continue
            if article is not None:
                articles.append(article)
        if not articles:
            raise AnswerError(f"{feed}: none of the {len(parsed.entries)} items has a title and a link")
        return articles

    @staticmethod
    def _parse(body: bytes, feed: str) -> Any:
        """feedparser's reading of a body that is a well-formed feed with items; AnswerError for anything else."""
        head = body[:2048].decode("utf-8", "replace").lstrip("\ufeff")
        if not body.strip():
            raise AnswerError(f"{feed}: empty response instead of a feed")
        if _HTML_START.match(head):
            title = _html_title(body[:65536].decode("utf-8", "replace"))
            raise AnswerError(f"{feed}: answered with an HTML page, not a feed" + (f" ({title!r})" if title else ""))
        # feedparser reads <description> and <dc:description> into one field, the last one winning: CoinDesk
        # follows every real description with an empty <dc:description/>, which would erase it.
        body = _EMPTY_DC_DESCRIPTION.sub(b"", body)
        try:
            parsed = feedparser.parse(io.BytesIO(body), sanitize_html=True, resolve_relative_uris=False)
        except Exception as exc:  # feedparser copes with almost anything; whatever it cannot is this feed's fault
            raise AnswerError(f"{feed}: unreadable feed ({type(exc).__name__}: {exc})") from exc
        problem = parsed.get("bozo_exception")
        # feedparser's own "nobody cares" class covers a charset override or a non-XML content type: harmless.
        if parsed.get("bozo") and not isinstance(problem, feedparser.ThingsNobodyCaresAboutButMe):
            raise AnswerError(f"{feed}: feed is not well-formed XML ({problem})")
        if not parsed.get("version"):
            raise AnswerError(f"{feed}: not an RSS or Atom feed: {head[:80].strip()!r}")
        if not parsed.entries:
            raise AnswerError(f"{feed}: the feed has no items")
        return parsed

    @staticmethod
    def _article(entry: Any, *, source: str, feed: str, base: str) -> Article | None:
        title = str(entry.get("title") or "")
        if (entry.get("title_detail") or {}).get("type") == "text/html":
            title = plain_text(title)
        title = " ".join(title.split())
        link = entry.get("link") or (entry.get("id") if entry.get("guidislink") else None)
        link = urljoin(base, str(link)) if link else ""
        if not title or urlsplit(link).scheme not in ("http", "https"):
            return None
        moment = entry.get("published_parsed") or entry.get("updated_parsed")
        published = provider_time(calendar.timegm(moment)) if moment else None
        if moment and published is None:
            return None  # dated before 2009 or days ahead: a wrong date, which would pin the item on top or bottom
        summary = plain_text(str(entry.get("summary") or ""))
        url = clean_url(link)
        return Article(
            id=article_id(url, title), title=title, source=source, url=url,
            published_at=iso(published),
            categories=clean_categories(tag.get("label") or tag.get("term") for tag in entry.get("tags") or []),
            summary=clip(summary) if summary else None, feed=feed)


class CoinDeskFeed(RssFeed):
    id = "coindesk_rss"
    name = "CoinDesk"
    # The address with a trailing slash answers 308 to this one (recorded 2026-08-30): save the round trip.
    base_url = "https://www.coindesk.com/arc/outboundfeeds/rss"
    docs = "https://www.coindesk.com/arc/outboundfeeds/rss/"


class CointelegraphFeed(RssFeed):
    id = "cointelegraph_rss"
    name = "Cointelegraph"
    base_url = "https://cointelegraph.com/rss"
    docs = "https://cointelegraph.com/rss-feeds"


class DecryptFeed(RssFeed):
    id = "decrypt_rss"
    name = "Decrypt"
    base_url = "https://decrypt.co/feed"
    docs = "https://decrypt.co/feed"


class TheBlockFeed(RssFeed):
    id = "theblock_rss"
    name = "The Block"
    base_url = "https://www.theblock.co/rss.xml"
    docs = "https://www.theblock.co/rss.xml"


class CryptoSlateFeed(RssFeed):
    id = "cryptoslate_rss"
    name = "CryptoSlate"
    base_url = "https://cryptoslate.com/feed/"
    docs = "https://cryptoslate.com/feed/"


class BitcoinistFeed(RssFeed):
    id = "bitcoinist_rss"
    name = "Bitcoinist"
    base_url = "https://bitcoinist.com/feed/"
    docs = "https://bitcoinist.com/feed/"


class BlockworksFeed(RssFeed):
    id = "blockworks_rss"
    name = "Blockworks"
    # /feed is the address public feed readers use; Blockworks' Cloudflare refuses many cloud IPs (403).
    base_url = "https://blockworks.co/feed"
    docs = "https://blockworks.co/feed"


#: The feeds, in order of preference (the first to carry an article is credited with it).
FEEDS: tuple[type[RssFeed], ...] = (CoinDeskFeed, CointelegraphFeed, TheBlockFeed, DecryptFeed, BlockworksFeed,
                                    CryptoSlateFeed, BitcoinistFeed)

#: Publisher names by site, so an aggregator's item from a publisher we also read carries the same name.
PUBLISHERS: Mapping[str, str] = MappingProxyType({_host(cls.base_url): cls.name for cls in FEEDS})


class CryptoPanic(NewsProvider):
    """CryptoPanic's posts API (an aggregator). Needs a token; the path names the token's plan.

    CryptoPanic retired its free plan in 2026 and publishes no rate figure we could confirm, so the budget is one
    call every ten minutes: its posts lag the publishers' own feeds anyway.
    """

    id = "cryptopanic"
    name = "CryptoPanic"
    base_url = "https://cryptopanic.com/api"
    endpoints = ("/{plan}/v2/posts/",)
    docs = "https://cryptopanic.com/developers/api/"
    rate = Rate(1, 600, burst=1)
    probe_keys = ("results",)
    key_setting = "cryptopanic_token"
    key_required = True
    probe_interval = 3600.0
    plan = "developer"

    def __init__(self, key: str | None = None, plan: str | None = None) -> None:
        super().__init__(key)
        if plan:
            self.plan = plan

    @property
    def posts_path(self) -> str:
        return f"/{self.plan}/v2/posts/"

    def auth(self) -> tuple[dict[str, str], dict[str, str]]:
        return ({}, {"auth_token": self.key}) if self.key else ({}, {})

    async def fetch_articles(self, fetcher: Fetcher) -> list[Article]:
        raw = await fetcher.get_json(self, self.posts_path, {"public": "true"})
        return self.normalize_posts(raw)

    async def probe(self, fetcher: Fetcher) -> None:
        response = await fetcher.request(self, "GET", self.posts_path, params={"public": "true"}, probe=True)
        self.check_probe(fetcher.decode_json(self, response))

    @classmethod
    def normalize_posts(cls, raw: Any, publishers: Mapping[str, str] = PUBLISHERS) -> list[Article]:
        """``results[]`` of the posts API: ``title``, ``url`` (else the post's CryptoPanic page from ``id`` and
        ``slug``), ``published_at``, ``source{title, domain}``, ``currencies[].code`` as categories."""
        if not isinstance(raw, dict):
            raise AnswerError(f"cryptopanic: expected an object, got {type(raw).__name__}")
        if "results" not in raw:
            info = raw.get("info") or raw.get("detail") or raw.get("error") or raw.get("status")
            raise AnswerError(f"cryptopanic error: {info}" if info else
                              f"cryptopanic: no results in {sorted(raw)[:8]}")
        results = raw["results"]
        if not isinstance(results, list):
            raise AnswerError(f"cryptopanic: results is a {type(results).__name__}, not a list")
        articles = []
        for post in results[:MAX_ITEMS_PER_FEED]:
            if not isinstance(post, dict):
                continue
            try:
                article = cls._article(post, publishers)
            except ValueError:  # one malformed post is skipped, not the answer
                continue
            if article is not None:
                articles.append(article)
        if not articles:
            raise AnswerError(f"cryptopanic: none of {len(results)} posts has a title and a link")
        return articles

    @classmethod
    def _article(cls, post: dict[str, Any], publishers: Mapping[str, str]) -> Article | None:
        title = " ".join(str(post.get("title") or "").split())
        link = post.get("url")
        if not link and post.get("id") and post.get("slug"):
            link = f"https://cryptopanic.com/news/{post['id']}/{post['slug']}"
        if not title or not isinstance(link, str) or urlsplit(link).scheme not in ("http", "https"):
            return None
        source = post.get("source")
        if not isinstance(source, dict):
            source = {}
        domain = str(source.get("domain") or "").lower().removeprefix("www.")
        publisher = publishers.get(domain) or source.get("title") or domain or cls.name
        coins = post.get("currencies") or post.get("instruments") or []
        description = plain_text(str(post.get("description") or ""))
        url = clean_url(link)
        stated = parse_iso(post.get("published_at"))  # ISO, UTC when it names no zone
        published = provider_time(stated.isoformat()) if stated is not None else None
        if stated is not None and published is None:
            return None  # a date we cannot believe (see RssFeed._article)
        return Article(
            id=article_id(url, title), title=title, source=str(publisher), url=url,
            published_at=iso(published),
            categories=clean_categories(c.get("code") for c in coins if isinstance(c, dict)),
            summary=clip(description) if description else None, feed=cls.id)

