"""The page's address, ``?run=…&tab=…&step=…[&compare=…]``: a view can be shared, and a shared
link opens it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from . import checks

TABS = ("watch", "attention", "playground", "style")


def query(search) -> dict:
    """The address's parameters, whatever the page sent."""
    return {k: v[0] for k, v in parse_qs(checks.text(search).lstrip("?")).items()}


def address(run_id: str, tab: str, step: int, compare: str | None = None) -> str:
    return "?" + urlencode({"run": run_id, "tab": tab, "step": step, **({"compare": compare} if compare else {})})
