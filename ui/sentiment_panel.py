"""A dashboard panel where a person types a text and sees the verdict and which model gave it.

It asks the same sentiment runner the server uses (so the model's cache and batching apply) and says plainly
when VADER answered because the configured model is still loading or could not be loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

if TYPE_CHECKING:
    from inference.runner import SentimentRunner

ICONS = {"bullish": "🟢", "neutral": "⚪", "bearish": "🔴"}


async def panel_verdict(runner: SentimentRunner, text: str) -> str:
    """The verdict on ``text`` as Markdown: label, score, the model or backend that gave it, and why."""
    text = (text or "").strip()
    if not text:
        return "Type a text first."
    limit = runner.settings.sentiment_max_chars
    if len(text) > limit:
        return f"The text is {len(text):,} characters long; at most {limit:,} are scored."
    try:
        (verdict,) = await runner.score([text])
    except RuntimeError as exc:
        return f"Scoring is unavailable: {exc}"
    state = runner.state
    lines = [f"{ICONS[verdict.label]} **{verdict.label.capitalize()}** (score {verdict.score:+.2f} on -1 .. +1)",
             f"Scored by `{verdict.model}` ({'lexicon' if verdict.model == 'vader' else 'transformers model'})."]
    if verdict.model != state.id:
        if state.state == "loading":
            lines.append(f"The configured model `{state.id}` is still loading: the VADER lexicon answered meanwhile.")
        elif state.state == "failed":
            lines.append(f"The configured model `{state.id}` could not be loaded ({state.error}): "
                         "the VADER lexicon answered instead.")
    return "\n\n".join(lines)


def build_sentiment_panel(runner: SentimentRunner) -> None:
    """Add the panel's components to the ``gr.Blocks`` (or tab) being built."""
    gr.Markdown("### Sentiment of a text\nType a headline or a post: the server's sentiment model scores it.")
    text = gr.Textbox(label="Text", lines=3, max_length=runner.settings.sentiment_max_chars,
                      placeholder="e.g. Bitcoin ETF inflows hit a record as the price rises")
    button = gr.Button("Score", variant="primary")
    verdict = gr.Markdown()

    async def judge(value: str) -> str:
        return await panel_verdict(runner, value)

    # POST /api/sentiment is the documented API; the panel's own endpoint stays out of Gradio's API page.
    button.click(judge, inputs=text, outputs=verdict, api_visibility="undocumented")
