"""The News tab: the latest headlines, each with its source, date and sentiment verdict."""

from __future__ import annotations

import gradio as gr

from models.states import DataStatus
from ui.format import esc, link, when
from ui.widgets import Payload, View, cut, freshness, sentiment_badge, sources_line


def render_news(data: Payload | None, view: View, limit: int = 40) -> str:
    top = freshness("News", "news", data, view, source=None)
    if not data or data.get("status") == DataStatus.NO_DATA:
        return top
    articles = list(data.get("articles") or [])[:limit]
    if not articles:
        return top + sources_line(data, view) + '<p class="empty">The feeds answered with no articles.</p>'
    items = []
    for article in articles:
        published = when(article.get("published_at"), view.now, missing="date unknown")
        summary = article.get("summary")
        headline = link(article.get("url"), article.get("title") or "untitled")
        items.append(
            f'<li class="article"><div class="article-head">{headline}'
            f"</div><div class=\"article-meta\">{sentiment_badge(article.get('sentiment'))} "
            f"<b>{esc(article.get('source') or 'unknown source')}</b> · {published}</div>"
            + (f'<div class="article-summary">{esc(cut(summary, 220))}</div>' if summary else "") + "</li>")
    sources = ", ".join(esc(s) for s in data.get("sources") or [])
    return (f"{top}{sources_line(data, view)}<p class=\"note\">{len(articles)} latest headlines"
            f"{f' from {sources}' if sources else ''}.</p><ul class=\"articles\">{''.join(items)}</ul>")


def layout(html: dict[str, gr.HTML]) -> None:
    with gr.Tab("News", id="news", elem_id="tab-news"):
        html["news"] = gr.HTML(js_on_load=None, elem_id="news")
