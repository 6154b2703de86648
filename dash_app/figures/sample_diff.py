"""What changed between two samples of a run, word by word: words the later sample has and the
earlier lacks are marked added, the earlier's missing words removed."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from dash import dcc, html

SAME, ADDED, REMOVED = "same", "added", "removed"


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """(kind, text) pieces that spell ``new`` when the removed ones are left out, and ``old`` when
    the added ones are; words and the spaces between them are the units."""
    a, b = re.findall(r"\s+|\S+", old), re.findall(r"\s+|\S+", new)
    pieces = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            pieces.append((SAME, "".join(a[i1:i2])))
            continue
        if i2 > i1:
            pieces.append((REMOVED, "".join(a[i1:i2])))
        if j2 > j1:
            pieces.append((ADDED, "".join(b[j1:j2])))
    return [(kind, text) for kind, text in pieces if text]


def counts(pieces: list[tuple[str, str]]) -> tuple[int, int]:
    """Words added and removed."""
    words = {kind: sum(len(text.split()) for k, text in pieces if k == kind) for kind in (ADDED, REMOVED)}
    return words[ADDED], words[REMOVED]


def diff_entry(old_step: int, old: str, new_step: int, new: str) -> html.Div:
    """The shown step's sample with what changed since ``old_step`` marked, as the list shows it."""
    pieces = word_diff(old, new)
    added, removed = counts(pieces)
    marked = [text if kind == SAME else html.Span(text, className=f"diff-{kind}") for kind, text in pieces]
    return html.Div([
        html.Div(f"step {new_step} against step {old_step}: {added} word(s) added, {removed} removed",
                 className="sample-step"),
        html.Pre(marked, className="sample-text"),
    ], className="sample current diff", id={"type": "sample", "step": new_step})


def controls() -> html.Div:
    return html.Div([
        dcc.Checklist(id="samples-diff", value=[], options=[{"label": " mark what changed since", "value": "on"}]),
        dcc.Dropdown(id="diff-against", placeholder="the snapshot before", clearable=True,
                     className="small-dd diff-against"),
    ], className="chart-controls diff-controls")


def against(steps: list[int], shown: int, chosen) -> int | None:
    """The step to compare the shown one with: the chosen one if it comes before, else the
    snapshot before the shown step (None at the first)."""
    if isinstance(chosen, int) and not isinstance(chosen, bool) and chosen in steps and chosen < shown:
        return chosen
    earlier = [s for s in steps if s < shown]
    return earlier[-1] if earlier else None
