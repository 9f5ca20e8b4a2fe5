"""Regenerate the small data files shipped beside the example specs (deterministic; no download).

    python specs/data/make_data.py

- ``reviews.csv``: short movie-review-like sentences, ``text,label`` (1 positive, 0 negative);
- ``weather.jsonl``: multivariate time series of different lengths, ``{"x": [[temp, pressure,
  humidity], ...], "y": next temperature}`` (standardised values, never exactly 0);
- ``tags.jsonl``: sentences of a small grammar with one part-of-speech tag per word,
  ``{"text": "...", "label": ["DET", "NOUN", ...]}``;
- ``echo.jsonl``: windows of 9 steps of noisy waves for a sequence autoencoder, ``{"x": [[v], ...],
  "y": [v, ...]}`` (the target is the input itself, one value per step).
"""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

HERE = Path(__file__).parent

POSITIVE = [
    "great",
    "wonderful",
    "moving",
    "brilliant",
    "funny",
    "charming",
    "superb",
    "delightful",
    "fresh",
    "gripping",
]
NEGATIVE = ["boring", "awful", "dull", "clumsy", "tedious", "weak", "bland", "messy", "forgettable", "painful"]
NOUNS = ["film", "movie", "story", "plot", "cast", "script", "ending", "director", "score", "camera", "actor", "scene"]
FILLER = ["the", "a", "this", "that", "it", "was", "is", "really", "quite", "very", "and", "but", "with", "its"]


def reviews(rng: random.Random, n: int = 480) -> list[tuple[str, int]]:
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        good, bad = (POSITIVE, NEGATIVE) if label else (NEGATIVE, POSITIVE)
        words = [rng.choice(FILLER + NOUNS) for _ in range(rng.randint(4, 14))]
        for _ in range(rng.randint(1, 3)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(good))
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words) + 1), rng.choice(bad))
        rows.append((" ".join(words), label))
    return rows


def weather(rng: random.Random, n: int = 320) -> list[dict]:
    out = []
    for _ in range(n):
        length = rng.randint(8, 24)
        phase, drift = rng.uniform(0, 2 * math.pi), rng.uniform(-0.05, 0.05)
        steps = []
        for t in range(length + 1):
            temp = math.sin(phase + 0.4 * t) + drift * t + rng.gauss(0, 0.05)
            pressure = math.cos(phase + 0.4 * t) * 0.5 + rng.gauss(0, 0.05)
            humidity = 0.3 * temp - 0.6 * pressure + rng.gauss(0, 0.05)
            steps.append([round(v if abs(v) > 1e-3 else 1e-3, 4) for v in (temp, pressure, humidity)])
        out.append({"x": steps[:length], "y": steps[length][0]})
    return out


GRAMMAR = {
    "DET": ["the", "a", "every", "this"],
    "ADJ": ["small", "quick", "old", "red", "happy", "quiet"],
    "NOUN": ["dog", "cat", "child", "bird", "teacher", "river", "house", "song"],
    "VERB": ["sees", "likes", "follows", "finds", "hears", "builds"],
    "ADV": ["slowly", "often", "quietly", "today"],
    "PRON": ["she", "he", "it", "they"],
    "PREP": ["near", "under", "behind"],
}


def _noun_phrase(rng: random.Random) -> list[tuple[str, str]]:
    if rng.random() < 0.25:
        return [(rng.choice(GRAMMAR["PRON"]), "PRON")]
    phrase = [(rng.choice(GRAMMAR["DET"]), "DET")]
    if rng.random() < 0.5:
        phrase.append((rng.choice(GRAMMAR["ADJ"]), "ADJ"))
    return [*phrase, (rng.choice(GRAMMAR["NOUN"]), "NOUN")]


def tags(rng: random.Random, n: int = 480) -> list[dict]:
    out = []
    for _ in range(n):
        words = [*_noun_phrase(rng), (rng.choice(GRAMMAR["VERB"]), "VERB"), *_noun_phrase(rng)]
        if rng.random() < 0.4:
            words += [(rng.choice(GRAMMAR["PREP"]), "PREP"), *_noun_phrase(rng)]
        if rng.random() < 0.3:
            words.append((rng.choice(GRAMMAR["ADV"]), "ADV"))
        out.append({"text": " ".join(w for w, _ in words), "label": [t for _, t in words]})
    return out


def echo(rng: random.Random, n: int = 320, steps: int = 9) -> list[dict]:
    out = []
    for _ in range(n):
        phase, speed, scale = rng.uniform(0, 2 * math.pi), rng.uniform(0.2, 0.8), rng.uniform(0.3, 1.0)
        values = [round(scale * math.sin(phase + speed * t) + rng.gauss(0, 0.02), 4) for t in range(steps)]
        out.append({"x": [[v] for v in values], "y": values})
    return out


def main() -> None:
    rng = random.Random(7)
    with open(HERE / "reviews.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(reviews(rng))
    (HERE / "weather.jsonl").write_text("".join(json.dumps(r) + "\n" for r in weather(rng)), encoding="utf-8")
    (HERE / "tags.jsonl").write_text("".join(json.dumps(r) + "\n" for r in tags(rng)), encoding="utf-8")
    echoes = echo(random.Random(11))  # its own generator: the files above stay as they were
    (HERE / "echo.jsonl").write_text("".join(json.dumps(r) + "\n" for r in echoes), encoding="utf-8")


if __name__ == "__main__":
    main()
