"""How much a sample reads like the text the model learns from: a few plain statistics of each,
and one documented match score.

``style_match`` (0-100) is the mean of six similarities, each between 0 and 1:
- four closeness scores, ``1 - |a - b| / max(a, b)``, of the sample's and the source's average
  word length, average sentence length (words per ``.``, ``!`` or ``?``), punctuation rate
  (punctuation characters per character) and capitalisation rate (capitals per letter);
- the share of the sample's words that occur in the source (``word_overlap``);
- ``1 -`` the total variation distance between the two texts' character-bigram frequencies
  (``bigram_similarity``: 1 when the sample uses letter pairs exactly as often as the source).
A model writing random characters scores around 20; text from the source itself close to 100.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")
SENTENCE_END = re.compile(r"[.!?]+")
PROFILE_CHARS = 200_000  # a long source is profiled on its first 200,000 characters


@dataclass(frozen=True)
class Statistics:
    word_length: float
    sentence_length: float
    punctuation: float
    capitals: float


@dataclass(frozen=True)
class Profile:
    """What a sample is compared with: the source's statistics, words and bigram frequencies."""

    statistics: Statistics
    words: frozenset[str]
    bigrams: dict[str, float]


def statistics(text: str) -> Statistics:
    words = WORD.findall(text)
    letters = [c for c in text if c.isalpha()]
    sentences = max(len(SENTENCE_END.findall(text)), 1)
    return Statistics(
        word_length=sum(map(len, words)) / len(words) if words else 0.0,
        sentence_length=len(words) / sentences,
        punctuation=sum(1 for c in text if not c.isalnum() and not c.isspace()) / max(len(text), 1),
        capitals=sum(1 for c in letters if c.isupper()) / max(len(letters), 1),
    )


def bigram_frequencies(text: str) -> dict[str, float]:
    counts = Counter(text[i:i + 2] for i in range(len(text) - 1))
    total = sum(counts.values()) or 1
    return {pair: n / total for pair, n in counts.items()}


def profile(source: str) -> Profile:
    source = source[:PROFILE_CHARS]
    return Profile(statistics(source), frozenset(w.lower() for w in WORD.findall(source)),
                   bigram_frequencies(source))


def closeness(a: float, b: float) -> float:
    return 1.0 if a == b else 1.0 - min(abs(a - b) / max(abs(a), abs(b)), 1.0)


def match(source: Profile, sample: str) -> dict[str, float]:
    """``style_match`` (0-100) and its parts, for a sample against a source's profile."""
    mine = statistics(sample)
    words = [w.lower() for w in WORD.findall(sample)]
    overlap = sum(w in source.words for w in words) / len(words) if words else 0.0
    pairs = bigram_frequencies(sample)
    distance = 0.5 * sum(abs(pairs.get(p, 0.0) - source.bigrams.get(p, 0.0)) for p in {*pairs, *source.bigrams})
    parts = {
        "word_length": closeness(mine.word_length, source.statistics.word_length),
        "sentence_length": closeness(mine.sentence_length, source.statistics.sentence_length),
        "punctuation": closeness(mine.punctuation, source.statistics.punctuation),
        "capitals": closeness(mine.capitals, source.statistics.capitals),
        "word_overlap": overlap,
        "bigram_similarity": 1.0 - distance,
    }
    return {"style_match": 100.0 * sum(parts.values()) / len(parts), **parts}
