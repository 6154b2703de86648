"""Which run the page shows, decided from what the page holds: the run picked, a run just
started from the viewer (``switch-run``), the experiment picked and the one the run list was
made for (``listed-for``), the address, the viewer's default run and the newest run listed.

Dash drops an answer still on its way when the same callback is asked again (a refresh tick),
and the newer call knows only its own trigger. So the decision follows from the page's state:
a run just started is shown; an experiment other than the one the list was made for was just
picked, so its newest run is shown."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    triggers: frozenset[str]  # the ids of the inputs that fired the call
    experiment: str | None  # the experiment picker's value
    listed_for: str | None  # the experiment the run list was made for
    current: str  # the run picker's value ("" if none)
    switch_to: str  # a run just started from the viewer ("" if none)
    address_run: str | None  # the run the address names
    default_run: str | None  # the run the viewer was started with

    @property
    def picked(self) -> bool:
        """Whether an experiment was just picked."""
        return self.triggers == {"experiment"} or (self.listed_for is not None and self.experiment != self.listed_for)

    @property
    def settled(self) -> bool:
        """Whether there is nothing to do: only the address changed (it does every second while
        a run is followed), a run is shown, and neither a started run nor a picked experiment
        asks for another."""
        return self.triggers == {"url"} and bool(self.current) and not self.switch_to and not self.picked

    def wanted(self, newest: str | None) -> str | None:
        """The run to show, ``newest``: the newest run of the listed experiment."""
        if self.switch_to:
            return self.switch_to
        if self.picked:
            return newest
        return self.current or self.address_run or self.default_run or newest


def options(runs, wanted: str | None) -> list[dict]:
    """The run picker's options: the listed runs (``RunSummary``), and ``wanted`` by its id if
    it is not among them (the run panel says what is wrong with it)."""
    found = [{"label": f"{r.run_name} · {r.status.lower()}", "value": r.run_id} for r in runs]
    if wanted and wanted not in {o["value"] for o in found}:
        found.append({"label": wanted, "value": wanted})
    return found
