"""The only way report HTML is written: every piece of text goes through `esc`, every
attribute value through `attr`, and JSON placed in a page through `script_json`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any


def esc(value: Any) -> str:
    """Text for HTML (and for plotly, which decodes entities and draws the rest as text)."""
    return html.escape("" if value is None else str(value), quote=True)


def tag(name: str, content: str = "", **attrs: Any) -> str:
    """`<name attrs>content</name>`; `content` must already be markup (escaped)."""
    return f"<{name}{attrs_markup(attrs)}>{content}</{name}>"


def attrs_markup(attrs: dict[str, Any]) -> str:
    parts = []
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        name = key.rstrip("_").replace("_", "-")
        parts.append(f" {name}" if value is True else f' {name}="{esc(value)}"')
    return "".join(parts)


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    """Headers are plain text (escaped here); cells are markup (escape them before)."""
    head = "".join(tag("th", esc(h)) for h in headers)
    body = "".join("<tr>" + "".join(tag("td", c) for c in row) + "</tr>" for row in rows)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def script_json(element_id: str, payload: Any) -> str:
    """JSON data in a `<script type="application/json">`, safe against any string inside:
    `<`, `>` and `&` are written as \\u escapes, so nothing can close the element."""
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return (f'<script type="application/json" id="{esc(element_id)}">'
            f"{escape_json_text(text)}</script>")


def escape_json_text(text: str) -> str:
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
