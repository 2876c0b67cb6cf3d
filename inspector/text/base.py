"""One shape of call for every text renderer (the terminal's and the JSON's), as the page's
and the exports' renderers each take one model: `lines(model)` or `render(model)`.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from inspector.text.terminal import clean

M = TypeVar("M")


class TextRenderer(Generic[M]):
    """Renders one kind of model as text: `lines()` for the terminal's line-by-line output,
    `render()` for the whole text, newline-terminated, each line made safe for a terminal
    (`clean`) whatever a sentence quotes from the recording."""

    def lines(self, model: M) -> list[str]:
        raise NotImplementedError

    def render(self, model: M) -> str:
        return "\n".join(map(clean, self.lines(model))) + "\n"
