"""The AsyncAPI document as a plain HTML page, rendered here from the document itself (no CDN, no script): the
channels with their messages, then every message with its payload's fields, nested objects unfolded."""

from __future__ import annotations

import html
import json
import re
from typing import Any

MAX_DEPTH = 6

STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1f2937}
code,pre{font-family:ui-monospace,monospace;font-size:13px}pre{background:#f3f4f6;padding:.6em;overflow:auto}
table{border-collapse:collapse;width:100%;margin:.4em 0 1em}td,th{border-bottom:1px solid #e5e7eb;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f9fafb}.t{color:#6b7280}section{margin-bottom:2em}
h2{border-bottom:2px solid #e5e7eb;padding-bottom:.2em}a{color:#2563eb}nav a{margin-right:1em}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _prose(text: str) -> str:
    """Escaped text with its `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _esc(text))


class _Renderer:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})

    def resolve(self, schema: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[1]
            return name, self.schemas.get(name, {})
        return None, schema

    def type_of(self, schema: dict[str, Any]) -> str:
        name, target = self.resolve(schema)
        if name is not None:
            kind = target.get("type")
            if "enum" in target:
                return f"{name} (one of {', '.join(map(str, target['enum']))})"
            return f"{name}" if kind == "object" else f"{name}: {kind}"
        if "const" in schema:
            return f"= {json.dumps(schema['const'])}"
        if "enum" in schema:
            return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
        for union in ("anyOf", "oneOf"):
            if union in schema:
                return " | ".join(self.type_of(s) for s in schema[union])
        kind = schema.get("type", "any")
        if kind == "array":
            return f"array of {self.type_of(schema.get('items', {}))}"
        if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
            return f"map of {self.type_of(schema['additionalProperties'])}"
        return str(kind)

    def fields(self, schema: dict[str, Any], prefix: str, depth: int, seen: tuple[str, ...]) -> list[str]:
        """Table rows: every property, and those of the objects it holds, as dotted paths."""
        name, target = self.resolve(schema)
        if name in seen or depth > MAX_DEPTH:
            return []
        seen = (*seen, name) if name else seen
        rows: list[str] = []
        required = set(target.get("required", ()))
        for key, prop in target.get("properties", {}).items():
            path = f"{prefix}{key}"
            described = prop.get("description") or self.resolve(prop)[1].get("description", "")
            rows.append(f"<tr><td><code>{_esc(path)}</code></td><td class=t>{_esc(self.type_of(prop))}</td>"
                        f"<td>{'yes' if key in required else ''}</td><td>{_esc(described)}</td></tr>")
            for child, suffix in self._children(prop):
                rows += self.fields(child, f"{path}{suffix}.", depth + 1, seen)
        return rows

    def _children(self, prop: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
        """The object schemas inside a property: itself, its items, its map values, its union's members."""
        _, target = self.resolve(prop)
        if "properties" in target:
            return [(prop, "")]
        if target.get("type") == "array" and isinstance(target.get("items"), dict):
            return [(c, "[]" + s) for c, s in self._children(target["items"])]
        if isinstance(target.get("additionalProperties"), dict):
            return [(c, "{}" + s) for c, s in self._children(target["additionalProperties"])]
        return [child for member in target.get("anyOf", ()) for child in self._children(member)]

    def message(self, key: str, message: dict[str, Any]) -> str:
        rows = self.fields(message.get("payload", {}), "", 0, ())
        examples = "".join(f"<pre>{_esc(json.dumps(e.get('payload'), indent=1))}</pre>"
                           for e in message.get("examples", ()))
        return (f"<section id='message-{_esc(key)}'><h3>{_esc(message.get('title', key))}</h3>"
                f"<p>{_esc(message.get('summary', ''))}</p>{examples}"
                "<table><tr><th>field</th><th>type</th><th>required</th><th>description</th></tr>"
                f"{''.join(rows)}</table></section>")

    def channel(self, key: str, channel: dict[str, Any]) -> str:
        links = ", ".join(f"<a href='#message-{_esc(m)}'>{_esc(m)}</a>" for m in channel.get("messages", {}))
        return (f"<tr id='channel-{_esc(key)}'><td><code>{_esc(channel['address'])}</code></td>"
                f"<td>{_esc(channel.get('description', ''))}</td><td>{links}</td></tr>")

    def page(self) -> str:
        info = self.document["info"]
        servers = "".join(f"<li><code>{_esc(s['protocol'])}://{_esc(s['host'])}</code></li>"
                          for s in self.document.get("servers", {}).values())
        description = "".join(f"<p>{_prose(p)}</p>" for p in info.get("description", "").split("\n\n"))
        channels = "".join(self.channel(k, c) for k, c in self.document["channels"].items())
        messages = self.document["components"]["messages"]
        body = "".join(self.message(k, m) for k, m in messages.items())
        return (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>{_esc(info['title'])} {_esc(info['version'])}</title><style>{STYLE}</style></head><body>"
            f"<h1>{_esc(info['title'])} <small class=t>{_esc(info['version'])}</small></h1>"
            "<nav><a href='/asyncapi.json'>asyncapi.json</a><a href='/asyncapi.yaml'>asyncapi.yaml</a>"
            "<a href='/docs'>REST API (OpenAPI)</a><a href='/'>Dashboard</a></nav>"
            f"<p>AsyncAPI {_esc(self.document['asyncapi'])}, generated by the server from the models it sends.</p>"
            f"{description}<h2>Servers</h2><ul>{servers}</ul>"
            "<h2>Channels</h2><table><tr><th>address</th><th>description</th><th>messages</th></tr>"
            f"{channels}</table><h2>Messages</h2>{body}</body></html>")


def render(document: dict[str, Any]) -> str:
    """The page of an AsyncAPI document built by :func:`models.asyncapi.build_asyncapi`."""
    return _Renderer(document).page()
