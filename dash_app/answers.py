"""Answers of callbacks whose outputs are a dict: Dash wants a value for every output, so the
outputs a call leaves alone get ``no_update``."""

from __future__ import annotations

from dash import no_update


def answer(outputs: dict, **given) -> dict:
    """``given`` for the outputs it names, ``no_update`` for the other outputs of ``outputs``."""
    unknown = given.keys() - outputs.keys()
    if unknown:
        raise KeyError(f"no output named {', '.join(sorted(unknown))}")
    return {name: given.get(name, no_update) for name in outputs}
