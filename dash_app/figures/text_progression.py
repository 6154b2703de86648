"""The samples up to the shown step, newest first, the shown one highlighted.

A long run has thousands: the list holds the newest ones and a spread of the earlier ones (the
first included), and says how many lie between, so every step costs the page the same."""

from __future__ import annotations

from dash import html

LISTED = 24  # samples in the list at most
NEWEST = 12  # of them, the newest before the shown step


def listed_steps(steps: list[int], shown_step: int | None) -> list[int]:
    """Which of the snapshot ``steps`` (ascending) the list shows, ascending."""
    upto = [s for s in steps if shown_step is None or s <= shown_step]
    if len(upto) <= LISTED:
        return upto
    earlier, spread = upto[:-NEWEST], LISTED - NEWEST
    picked = {earlier[round(i * (len(earlier) - 1) / (spread - 1))] for i in range(spread)}
    return sorted(picked) + upto[-NEWEST:]


def text_progression(samples: list[tuple[int, str]], shown_step: int | None, kind: str = "sample",
                     steps: list[int] | None = None) -> list:
    """``samples``: (step, text) pairs; returns Dash children (ids of type ``kind``). With the
    run's snapshot ``steps``, a note between two listed samples says how many it leaves out."""
    shown = sorted((s, t) for s, t in samples if shown_step is None or s <= shown_step)
    index = {step: i for i, step in enumerate(steps or [])}
    items, newer = [], None
    for step, text in reversed(shown):
        left_out = index[newer] - index[step] - 1 if newer in index and step in index else 0
        if left_out > 0:
            items.append(html.Div(f"… {left_out:,} more sample{'s' * (left_out != 1)} between step {step} "
                                  f"and step {newer}: move the scrubber to read them", className="sample-gap"))
        items.append(html.Div(
            [html.Div(f"step {step}", className="sample-step"), html.Pre(text, className="sample-text")],
            className="sample current" if step == shown_step else "sample",
            id={"type": kind, "step": step},
        ))
        newer = step
    return items or [html.Div("No samples yet.", className="empty")]
