"""Which run the page shows (dash_app.run_choice), as a table of what the page holds and what
is shown; the run list's callback only reads the store around it."""

from types import SimpleNamespace

import pytest

from dash_app.run_choice import Page, options

NEWEST = "newest"


def page(triggers, experiment="llmb", listed_for="llmb", current="", switch_to="", address_run=None,
         default_run=None) -> Page:
    return Page(frozenset(triggers), experiment, listed_for, current, switch_to, address_run, default_run)


@pytest.mark.parametrize("shown, settled, picked, wanted", [
    # the first visit: the address's run, else the viewer's default run, else the newest
    (page({"runs-refresh", "url", "experiment", "switch-run"}, listed_for=None, address_run="linked"),
     False, False, "linked"),
    (page({"runs-refresh", "url", "experiment", "switch-run"}, listed_for=None, default_run="default"),
     False, False, "default"),
    (page({"runs-refresh", "url", "experiment", "switch-run"}, listed_for=None), False, False, NEWEST),
    # the address changes every second while a run is followed: nothing to do
    (page({"url"}, current="shown", address_run="shown"), True, False, "shown"),
    # ... unless no run is shown yet
    (page({"url"}, address_run="linked"), False, False, "linked"),
    # a refresh keeps the run shown, whatever the address says
    (page({"runs-refresh"}, current="shown", address_run="other"), False, False, "shown"),
    # a run just started is shown, whichever trigger the call knows of
    (page({"switch-run"}, current="shown", switch_to="started"), False, False, "started"),
    (page({"runs-refresh"}, current="shown", switch_to="started"), False, False, "started"),
    (page({"url"}, current="shown", switch_to="started"), False, False, "started"),
    # an experiment picked brings its newest run
    (page({"experiment"}, current="shown"), False, True, NEWEST),
    # ... even when a refresh superseded the pick's call: the list was made for another experiment
    (page({"runs-refresh"}, experiment="other", current="shown"), False, True, NEWEST),
    (page({"url"}, experiment="other", current="shown"), False, True, NEWEST),
    # a run just started wins over a picked experiment
    (page({"experiment"}, experiment="other", switch_to="started"), False, True, "started"),
])
def test_the_run_shown_follows_from_what_the_page_holds(shown, settled, picked, wanted):
    assert (shown.settled, shown.picked, shown.wanted(NEWEST)) == (settled, picked, wanted)


def test_an_empty_experiment_shows_no_run():
    assert page({"experiment"}, experiment="empty").wanted(None) is None
    assert page({"runs-refresh"}).wanted(None) is None


def test_the_picker_lists_the_runs_and_a_wanted_run_not_among_them_by_its_id():
    runs = [SimpleNamespace(run_id="a1", run_name="bold-fox", status="RUNNING"),
            SimpleNamespace(run_id="b2", run_name="calm-owl", status="FINISHED")]
    assert options(runs, "a1") == [{"label": "bold-fox · running", "value": "a1"},
                                   {"label": "calm-owl · finished", "value": "b2"}]
    assert options(runs, "gone")[-1] == {"label": "gone", "value": "gone"}
    assert options([], None) == []
