"""A chart on the page: a plotly figure, the element it is drawn in, and (optionally) data
for the page's own script. Figures use a small shared look instead of plotly's template,
which would repeat ~10 kB of settings in every figure.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
GRID = "#ECECEC"


@dataclass
class Chart:
    element_id: str
    figure: go.Figure
    data: Optional[dict[str, Any]] = None   # read by the page's script (hover panels)

    def figure_json(self) -> str:
        return pio.to_json(self.figure, validate=False, engine="json")


def base_layout(height: int, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = dict(
        template="none", height=height, font=dict(family=FONT, size=12, color="#222"),
        paper_bgcolor="white", plot_bgcolor="white", margin=dict(l=60, r=20, t=10, b=40),
        hoverlabel=dict(font=dict(family=FONT, size=12), align="left"),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0),
        xaxis=dict(gridcolor=GRID, zeroline=False, showline=True, linecolor="#999",
                   ticks="outside", tickcolor="#999"),
        yaxis=dict(gridcolor=GRID, zeroline=False, showline=True, linecolor="#999",
                   ticks="outside", tickcolor="#999"),
    )
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(layout.get(key), dict):
            layout[key] = {**layout[key], **value}
        else:
            layout[key] = value
    return layout


def b64(array: np.ndarray) -> str:
    """A little-endian array as base64, for the page's script to view as a typed array."""
    return base64.b64encode(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"))
                            .tobytes()).decode("ascii")
