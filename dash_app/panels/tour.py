"""Help for a first visit: a guided tour of the page (driver.js, vendored in assets/vendor), shown
once and reopened from the header's "?" button, and a "what am I looking at" note on each panel."""

from __future__ import annotations

from dash import Input, Output, State, dcc, html

# (the element it points at, title, one or two plain sentences)
STEPS = [
    ("#pickers", "Which training",
     "Pick a training run here. The newest one is shown first; a running one updates by itself."),
    (".training-state", "What the training does",
     "Running, paused, finished, killed or failed, and how far it has come."),
    (".controls", "Steer it",
     "Pause a running training, let it take one step at a time, or stop it. It saves a checkpoint first."),
    ("#loss-panel", "How wrong it is",
     "The loss: how surprised the model is by the next character. It falls as the model learns. "
     "Click the chart to jump to that step."),
    ("#samples-panel", "What it writes",
     "Text the model wrote at each evaluation. Watch gibberish turn into words, then into lines "
     "that look like the book."),
    ("#tower-panel", "What it expects next",
     "At each position of the highlighted sample, the five characters the model found most likely. "
     "Dark means sure."),
    ("#stars-panel", "Character star map",
     "Every character as a point. Characters the model treats alike drift together: vowels, "
     "consonants, punctuation."),
    ("#scrubber-bar", "Travel in time",
     "Drag to any step, or press Play to watch the training again. Every panel follows. "
     "The arrow keys step too."),
    ("#tab-attention", "Attention Cinema",
     "What each attention head looks at, and how that changed since the first step."),
    ("#tab-playground", "Token Playground",
     "Type a prompt and see what the model would write next, as it was at the step the scrubber shows."),
    ("#tab-style", "Style Transfer",
     "Paste your own text, train a small model on it, and see how well its writing matches your style."),
    ("#train-summary", "Start a training",
     "Train a new model on a bundled book or on your own text file."),
    ("#models-summary", "Your models",
     "The saved models. Save the shown training as one, and load one to train it further."),
    ("#tour-open", "This tour again",
     "Press ? whenever you want this tour again. Each panel's (i) says what it shows."),
]

INFO = {
    "loss": "The loss is how surprised the model is by the real next character (in nats; lower "
            "is better). Blue: the training text, measured every step. Red: text held back from "
            "training, measured at each evaluation. When red stops falling while blue goes on, "
            "the model starts to memorise.",
    "samples": "At each evaluation the model writes a few lines from the same start. The "
               "highlighted one is the step the scrubber shows; the ones below came earlier.",
    "tower": "Each column is one position of the highlighted sample; its five cells are the "
             "characters the model found most likely there, the likeliest on top, darker = more "
             "likely (at the temperature below). A red box marks the character it actually drew.",
    "stars": "Each character's learned embedding, projected to three dimensions. Drag to turn "
             "it; hover a point for its nearest neighbours. Colours are character classes.",
    "attention": "Each tile is one head of one layer reading the same text: row = the character "
                 "being read, column = the earlier character it looks at; bright = strong "
                 "attention. Click a tile to see it in detail.",
    "detail": "The selected head on the probe text, every character labelled on a few ticks: "
              "each row is a character being read, each column an earlier one; bright = it looks "
              "there. Heads often learn to look at the previous character, or back to a space.",
    "evolution": "The same head at the first snapshot (before training: attention spread evenly "
                 "over everything before) and at the shown step, side by side.",
    "entropy": "How spread out each head's attention is, measured at every snapshot on the same "
               "text: its entropy, in nats. 0 means the head always looks at exactly one character "
               "(the previous one, say); the dotted line is attention spread evenly over everything "
               "before, the most there can be. Untrained heads start near that line; a line that "
               "falls is a head learning where to look. Hover a point for about how many characters "
               "the head spreads over; click it to see that head at that step.",
    "style": "Paste at least 50 words; a small model trains on them in its own run (every panel "
             "and the scrubber work on it as on any run). At each snapshot LLMBreaker compares "
             "the sample with your text: word and sentence length, punctuation, capitals, how many "
             "of its words occur in your text and how often it uses the same letter pairs. The style "
             "match is the average of those six, as a percentage.",
    "playground": "The model as it was at the step the scrubber shows reads the end of your text "
                  "(the highlighted part: as many characters as it can see) and gives each "
                  "character a probability of coming next. Step draws one at random by those "
                  "probabilities (temperature below 1 favours the likeliest, above 1 evens them "
                  "out); click a bar to write that character instead. Draws are seeded: the same "
                  "prompt and the same choices give the same text.",
}

# A first visit (nothing remembered in this browser) starts the tour once the page has drawn;
# "?" starts it again. Skipping or finishing it is remembered.
START_JS = """
function (clicks, steps) {
    const auto = !clicks;
    if (auto && window.localStorage.getItem("llmb.tour.done")) { document.body.dataset.tour = "seen"; return ""; }
    window.llmbTour && window.llmbTour.start(steps, auto);
    return "";
}"""


def button() -> html.Button:
    return html.Button("?", id="tour-open", className="tour-btn", title="a short tour of this page")


def info(key: str) -> html.Details:
    """A panel's "(i)": what it shows, in plain words, opened on click."""
    return html.Details([html.Summary("i", title="what am I looking at?"),
                         html.Div(INFO[key], className="info-body")], className="info")


def heading(title: str, key: str, title_id: str | None = None) -> html.Div:
    """A panel's title (``title_id``: for a callback that words it for the shown run) and its note."""
    return html.Div([html.H3(title, **({"id": title_id} if title_id else {})), info(key)], className="panel-heading")


def layout() -> list:
    return [dcc.Store(id="tour-steps", data=[{"element": element, "popover": {"title": title, "description": words}}
                                             for element, title, words in STEPS]),
            html.Div(id="tour-started", hidden=True)]


def register(app) -> None:
    app.clientside_callback(START_JS, Output("tour-started", "children"),
                            Input("tour-open", "n_clicks"), State("tour-steps", "data"))
