"""The plain-words caption of what the model is learning at the shown step."""

from __future__ import annotations

import math

# (upper bound of the validation loss, caption, what to look for). Losses are in nats per
# character; a model that knows nothing scores ln(vocabulary size), about 4.2 for Shakespeare.
PHASES = [
    (1.7, "Mimicking the style", "Names, line breaks and turns of phrase now look like the corpus."),
    (2.0, "Grammar and structure", "Words follow one another in plausible order; lines take shape."),
    (2.4, "Common words", "Short, frequent words appear; longer ones are still invented."),
    (2.9, "Learning the alphabet", "Spaces, vowels and common letters show up in the right proportions."),
    (math.inf, "Babbling", "Characters are still close to random: the model has only begun."),
]
STEP_PHASES = [(500, 3), (1500, 2), (3000, 1)]  # without a loss: the original step thresholds


def phase(step: int, val_loss: float | None) -> tuple[str, str]:
    """The (caption, explanation) for a step, from its validation loss when known."""
    if val_loss is not None and math.isfinite(val_loss):
        return next((title, text) for bound, title, text in PHASES if val_loss < bound)
    index = next((i for bound, i in STEP_PHASES if step <= bound), 0)
    return PHASES[index][1], PHASES[index][2]
