"""Icons that render on every machine: SVG shapes drawn by the stylesheet (``.icon-*`` in
assets/style.css) in the text's colour, instead of font glyphs a machine may lack."""

from __future__ import annotations

from dash import html

NAMES = ("play", "pause", "step", "stop", "fail", "back", "forward", "dot")


def icon(name: str) -> html.Span:
    assert name in NAMES, name  # each has its shape in the stylesheet
    return html.Span(className=f"icon icon-{name}", **{"aria-hidden": "true"})


def labelled(name: str, text: str) -> list:
    """A button's children: its icon, then its words."""
    return [icon(name), text]
