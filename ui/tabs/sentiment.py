"""The Sentiment tab: the market's mood (the news' mean score and the Fear & Greed index), the verdicts, the
scores by source, which model gave them, and a box where a visitor scores a text of their own.

The score, verdicts and scores by source shown are one backend's (the payload's ``backend``); texts another backend
scored (VADER standing in for the model) are counted in a line of their own, their mean never blended in."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from models.states import DataStatus
from ui.format import NA, badge, count, esc, number, when
from ui.sentiment_panel import build_sentiment_panel
from ui.widgets import KIND, Payload, View, chips, cut, freshness, gauge, heading, sources_line, status_badge, wrap

if TYPE_CHECKING:
    from inference.runner import SentimentRunner

#: What the configured model's state means to a visitor.
MODEL_STATES = {"ready": "ready", "loading": "loading…", "failed": "could not be loaded"}


def render_sentiment(data: Payload | None, model: Payload | None, view: View) -> str:
    top = freshness("Sentiment", "sentiment", data, view, source=None)
    model_line = _model_line(model, data)
    if not data or data.get("status") == DataStatus.NO_DATA:
        return top + model_line
    volume = data.get("social_volume")
    by_source = data.get("sentiment_by_source") or {}
    bars = "".join(_bar(name, value) for name, value in sorted(by_source.items(), key=lambda kv: -kv[1]))
    counts = data.get("label_counts") or {}
    count_chips = chips([f"{badge(label, KIND.get(label, 'off'))} {count(n)}" for label, n in counts.items()],
                        "No labels yet.")
    topics = chips([esc(t) for t in data.get("trending_topics") or []], "No topics stand out in the texts.")
    bars_block = f'<div class="bars">{bars}</div>' if bars else '<p class="empty">No source scored yet.</p>'
    return (f'{top}{sources_line(data, view)}<div class="mood">{"".join(_gauges(data, view))}'
            f'<div class="card">{heading("Verdicts", f"{count(volume)} texts" if volume else "no texts")}'
            f'{count_chips}{heading("Trending topics")}{topics}</div></div>{model_line}{_other_backends(data)}'
            f'{heading("Mean score by source", "-1 bearish … +1 bullish")}{bars_block}')


def _gauges(data: Payload, view: View) -> list[str]:
    """The mean score of the texts, and the Fear & Greed index; each an empty arc when there is none."""
    score = number(data.get("sentiment_score"))
    overall = data.get("overall_sentiment")
    chosen = (data.get("sentiment_by_backend") or {}).get(data.get("backend")) or {}
    volume = chosen.get("count") or data.get("social_volume")
    score_text = (f"{score:+.2f} {badge(str(overall), KIND.get(str(overall), 'off'))}" if score is not None
                  else '<span class="na">no score</span>')
    caption = (f"mean of {count(volume)} texts, -1 bearish … +1 bullish" if score is not None
               else "no texts were scored, so there is no score")
    gauges = [gauge(score, -1, 1, caption, score_text)]
    fear = data.get("fear_greed")
    if fear:
        gauges.append(gauge(number(fear.get("value")), 0, 100,
                            f"Fear &amp; Greed (0 fear … 100 greed) · {esc(view.name(fear.get('source')))} · "
                            f"{when(fear.get('timestamp'), view.now, missing='date unknown')}",
                            f"{esc(fear.get('value'))} {esc(fear.get('classification') or '')}"))
    else:
        gauges.append(gauge(None, 0, 100, "Fear &amp; Greed index not available", NA))
    return gauges


def _other_backends(data: Payload) -> str:
    """Texts scored by a backend other than the score's: said, with their own mean, never mixed into it."""
    lines = [f"{count(b.get('count'))} {'text was' if b.get('count') == 1 else 'texts were'} scored by "
             f"<b>{esc(b.get('model'))}</b> ({esc(name)}) instead, mean {score:+.2f} on that backend's own scale: "
             "not in the score above."
             for name, b in (data.get("sentiment_by_backend") or {}).items()
             if name != data.get("backend") and isinstance(b, dict) and (score := number(b.get("mean"))) is not None]
    return "".join(f'<p class="note">{line}</p>' for line in lines)


def _bar(name: str, value: object) -> str:
    score = number(value)
    if score is None:
        return ""
    width = min(50.0, abs(score) * 50)
    side = "pos" if score >= 0 else "neg"
    return (f'<div class="bar-row"><span class="bar-name">{esc(name)}</span><span class="bar-track">'
            f'<span class="bar {side}" style="width:{width:.1f}%"></span></span>'
            f'<span class="bar-value">{score:+.2f}</span></div>')


def _model_line(model: Payload | None, data: Payload | None) -> str:
    """Which model scored the texts, and the configured model's state (loading, ready, failed and why)."""
    parts = []
    if data and data.get("model"):
        backend = data.get("backend")
        parts.append(f"Texts scored by <b>{esc(data.get('model'))}</b>{f' ({esc(backend)})' if backend else ''}")
    state = (model or {}).get("sentiment_model") if model else None
    if state:
        line = (f"Model <b>{esc(state.get('id'))}</b>: {status_badge(state.get('state'))} "
                f"{esc(MODEL_STATES.get(str(state.get('state')), ''))}; answering now: "
                f"<b>{esc(state.get('backend'))}</b>")
        if state.get("error"):
            line += f' <span class="err">{esc(cut(state.get("error"), 140))}</span>'
        parts.append(line)
    return f'<p class="note">{" · ".join(parts)}</p>' if parts else ""


def layout(html: dict[str, gr.HTML], runner: SentimentRunner | None) -> None:
    """The tab; the scoring box only when a sentiment model runs here (``runner``), else a line saying so."""
    with gr.Tab("Sentiment", id="sentiment", elem_id="tab-sentiment"):
        html["sentiment"] = gr.HTML(js_on_load=None, elem_id="sentiment")
        if runner is not None:
            with gr.Column(elem_id="score-text"):
                build_sentiment_panel(runner)
        else:
            gr.HTML(wrap(heading("Sentiment of a text") + '<p class="empty">Scoring your own text is not '
                         "available on this server: no sentiment model runs here.</p>"), js_on_load=None)
