"""Every sample up to the shown step, newest first, the shown one highlighted."""

from __future__ import annotations

from dash import html


def text_progression(samples: list[tuple[int, str]], shown_step: int | None, kind: str = "sample") -> list:
    """``samples``: (step, text) pairs; returns Dash children (ids of type ``kind``)."""
    items = []
    for step, text in sorted(((s, t) for s, t in samples if shown_step is None or s <= shown_step),
                             reverse=True):
        items.append(html.Div(
            [html.Div(f"step {step}", className="sample-step"), html.Pre(text, className="sample-text")],
            className="sample current" if step == shown_step else "sample",
            id={"type": kind, "step": step},
        ))
    return items or [html.Div("No samples yet.", className="empty")]
