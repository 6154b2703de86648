"""Answers of callbacks whose outputs are a dict: Dash wants a value for every output, so the
outputs a call leaves alone get ``no_update``; and the header's toast, which any callback sets
besides its outputs."""

from __future__ import annotations

from dash import no_update, set_props


def answer(outputs: dict, **given) -> dict:
    """``given`` for the outputs it names, ``no_update`` for the other outputs of ``outputs``."""
    unknown = given.keys() - outputs.keys()
    if unknown:
        raise KeyError(f"no output named {', '.join(sorted(unknown))}")
    return {name: given.get(name, no_update) for name in outputs}


def toast(message: str, ok: bool = True) -> None:
    """Shows ``message`` in the header's toast, green if ``ok``, red if not; an open menu repeats
    it (the page's echo listens to the toast). Only inside a callback: Dash sends it with the
    callback's answer."""
    set_props("toast", {"children": message, "className": "toast ok" if ok else "toast error"})
