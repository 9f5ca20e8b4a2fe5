"""Text to token ids and back, saved as JSON so that training, evaluation and prediction share one vocabulary.

A :class:`Tokenizer` works at word level (lowercased runs of letters and digits, Keras's ``Tokenizer``
defaults in spirit) or at character level. Its ids follow the Keras convention that rnnspec's
``Embedding(vocab_size, ...)`` and ``mask_zero`` expect:

* id 0 is padding (never a token; :func:`rnnspec.data.pad_sequences` fills with it),
* id 1 is out-of-vocabulary (Keras ``Tokenizer(oov_token=...)`` puts it at 1 too),
* ids 2, 3, ... are the fitted tokens, most frequent first; ties keep the order of first occurrence
  (exactly the order Keras's ``Tokenizer`` gives them), so the vocabulary is deterministic.

``vocab_size`` caps the number of ids, padding and OOV included, so every id is ``< vocab_size`` and
fits the spec's ``input.vocab_size``. The tokenizer also carries the class names of string labels
(``classes``), so a model trained on ``pos``/``neg`` labels predicts names again.

This module is part of the framework-free core: it imports the standard library and rnnspec only.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from rnnspec.lang.errors import RnnspecError, render_problem
from rnnspec.util import is_int_at_least, write_text_atomic

__all__ = [
    "OOV_ID",
    "PAD_ID",
    "TOKENIZER_FORMAT",
    "WORD_PATTERN",
    "DataError",
    "Tokenizer",
    "split_chars",
    "split_words",
]

PAD_ID = 0
"""Id of padding: never a token."""
OOV_ID = 1
"""Id of every token that is not in the vocabulary."""
TOKENIZER_FORMAT = "rnnspec-tokenizer"
_TOKENIZER_VERSION = 1

WORD_PATTERN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
"""A word: a run of Unicode letters and digits; an apostrophe inside a word keeps it whole (``don't``).

On ASCII text this is what Keras's ``text_to_word_sequence`` defaults give, except that Keras keeps
any character it does not filter (a leading quote ``'word``, ``é``-like symbols outside its filter
list such as ``“``) inside the word, and splits only on spaces and its filter characters.
"""

Level = Literal["word", "char"]


class DataError(RnnspecError):
    """A data file, data source or tokenizer is unusable; the message says where, what, and how to fix it.

    Defined here (the lowest module of the data layer) and re-exported by :mod:`rnnspec.data`.
    """

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        received: str | None = None,
        expected: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.where = where
        self.received = received
        self.expected = expected
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        """Multi-line text in the layout of spec errors: ``WHERE: message`` then received/expected/fix."""
        return render_problem(self.where, self.message, self.received, self.expected, self.fix)


def loads_json(text: str | bytes, where: str, *, document: str | None = None) -> Any:
    """``json.loads`` for data files: every way the text can be wrong is a :class:`DataError` at ``where``
    (invalid JSON with its column, nesting too deep for Python, integers over Python's 4,300 digits).

    ``where`` is a JSONL line (``FILE:LINE``; the column is added), or with ``document`` (what the
    file is) a whole file (``FILE``; line and column are added).
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if document is not None:
            at = f"{where}:{exc.lineno}:{exc.colno}"
            raise DataError(f"{document} is not valid JSON", where=at, received=exc.msg) from None
        raise DataError("invalid JSON", where=f"{where}:{exc.colno}", received=exc.msg) from None
    except RecursionError:
        raise DataError("the JSON nests too deeply", where=where, expected="flat JSON values") from None
    except ValueError as exc:  # integers over Python's int-to-str digit limit
        raise DataError("a number in the JSON is too long", where=where, received=str(exc)[:120]) from None

    def __str__(self) -> str:
        return self.render()


def split_words(text: str, *, lower: bool = True) -> list[str]:
    """Words of ``text`` (see :data:`WORD_PATTERN`), lowercased when ``lower``."""
    return WORD_PATTERN.findall(text.lower() if lower else text)


def split_chars(text: str, *, lower: bool = False) -> list[str]:
    """Characters of ``text``, spaces and punctuation included (lowercased when ``lower``)."""
    return list(text.lower() if lower else text)


class Tokenizer:
    """A fitted vocabulary: ``fit`` on training texts, then ``encode``/``decode`` with the same ids everywhere.

    >>> tok = Tokenizer("word", vocab_size=5).fit(["the cat", "the dog", "a cat"])
    >>> tok.encode(["the cat sat"])
    [[2, 3, 1]]
    >>> tok.decode([[2, 3, 1, 0]])
    ['the cat <oov>']
    """

    def __init__(
        self,
        level: Level = "word",
        *,
        vocab_size: int | None = None,
        lower: bool | None = None,
        oov_token: str = "<oov>",
    ) -> None:
        """``level``: ``"word"`` or ``"char"``; ``vocab_size``: ids are ``< vocab_size`` (padding and OOV
        included), None keeps every token; ``lower``: lowercase first (default: True for words, False for
        characters); ``oov_token``: how :meth:`decode` shows id 1."""
        if level not in ("word", "char"):
            raise DataError(
                "unknown tokenizer level",
                received=repr(level),
                expected="'word' or 'char'",
                fix="use level='word' (lowercased words) or level='char' (characters)",
            )
        if vocab_size is not None and (isinstance(vocab_size, bool) or not isinstance(vocab_size, int)):
            raise DataError("vocab_size must be an integer", received=repr(vocab_size), expected="an int >= 2, or None")
        if vocab_size is not None and vocab_size < 2:
            raise DataError(
                "vocab_size is too small for a tokenizer",
                received=f"vocab_size={vocab_size}",
                expected="vocab_size >= 2 (id 0 is padding, id 1 is out-of-vocabulary, tokens start at 2)",
                fix="raise vocab_size (the spec's input.vocab_size)",
            )
        self.level: Level = level
        self.vocab_size = vocab_size
        self.lower = (level == "word") if lower is None else bool(lower)
        self.oov_token = oov_token
        self.tokens: list[str] | None = None
        """The vocabulary in id order: ``tokens[i]`` has id ``i + 2``; None before :meth:`fit`."""
        self.classes: tuple[str, ...] | None = None
        """Names of string labels in id order (sorted), or None when the labels are integers."""
        self._index: dict[str, int] = {}

    # -- fitting ---------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        """The tokens of one text, before the vocabulary lookup."""
        if not isinstance(text, str):
            raise DataError("a text must be a string", received=f"{type(text).__name__}: {text!r:.60}")
        return split_words(text, lower=self.lower) if self.level == "word" else split_chars(text, lower=self.lower)

    def fit(self, texts: Iterable[str]) -> Tokenizer:
        """Build the vocabulary from ``texts`` (replacing any previous one); returns ``self``.

        Most frequent first; equal counts keep the order of first occurrence (a stable sort of the
        counts, as Keras's ``Tokenizer.fit_on_texts``); capped at ``vocab_size - 2`` tokens.
        """
        counts: Counter[str] = Counter()
        for text in _texts(texts):
            counts.update(self.tokenize(text))
        return self.fit_counts(counts)

    def fit_counts(self, counts: Counter[str]) -> Tokenizer:
        """Build the vocabulary from token counts made in the order the texts were read (what :meth:`fit`
        counts; a file too large for memory is counted as it streams by); returns ``self``."""
        ranked = sorted(counts, key=counts.__getitem__, reverse=True)  # Counter keeps first-seen order
        if self.vocab_size is not None:
            ranked = ranked[: self.vocab_size - 2]
        self._set_tokens(ranked)
        return self

    def _set_tokens(self, tokens: list[str]) -> None:
        self.tokens = list(tokens)
        self._index = {token: i + 2 for i, token in enumerate(self.tokens)}

    @property
    def fitted(self) -> bool:
        """True once :meth:`fit` (or :meth:`from_json`) has given the tokenizer a vocabulary."""
        return self.tokens is not None

    @property
    def num_ids(self) -> int:
        """Number of ids in use: padding, OOV and the tokens (``<= vocab_size``)."""
        return 2 + len(self._require_fitted())

    @property
    def word_index(self) -> dict[str, int]:
        """Token to id (a copy)."""
        self._require_fitted()
        return dict(self._index)

    def _require_fitted(self) -> list[str]:
        if self.tokens is None:
            raise DataError(
                "the tokenizer has no vocabulary yet",
                fix="call tokenizer.fit(training_texts) first, or load a saved one with Tokenizer.load(path)",
            )
        return self.tokens

    # -- encoding --------------------------------------------------------------------------------

    def encode_one(self, text: str) -> list[int]:
        """Ids of one text; unknown tokens become :data:`OOV_ID`."""
        self._require_fitted()
        return [self._index.get(token, OOV_ID) for token in self.tokenize(text)]

    def encode(self, texts: Iterable[str]) -> list[list[int]]:
        """Ids of each text (ragged; pad them with :func:`rnnspec.data.pad_sequences`)."""
        return [self.encode_one(text) for text in _texts(texts)]

    def decode_one(self, ids: Iterable[int]) -> str:
        """Text of one id sequence: padding is skipped, OOV shows as ``oov_token``; words are joined by spaces."""
        tokens = self._require_fitted()
        out = []
        for raw in ids:
            i = int(raw)
            if i == PAD_ID:
                continue
            if i == OOV_ID:
                out.append(self.oov_token)
            elif 2 <= i < 2 + len(tokens):
                out.append(tokens[i - 2])
            else:
                raise DataError(
                    "token id out of range for this tokenizer",
                    received=f"id {i}",
                    expected=f"ids in [0, {2 + len(tokens)})",
                    fix="decode ids produced with this tokenizer's vocabulary",
                )
        return (" " if self.level == "word" else "").join(out)

    def decode(self, sequences: Iterable[Iterable[int]]) -> list[str]:
        """Text of each id sequence (see :meth:`decode_one`)."""
        return [self.decode_one(seq) for seq in sequences]

    # -- JSON ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict that :meth:`from_dict` reads back to an equal tokenizer."""
        return {
            "format": TOKENIZER_FORMAT,
            "version": _TOKENIZER_VERSION,
            "level": self.level,
            "lower": self.lower,
            "vocab_size": self.vocab_size,
            "oov_token": self.oov_token,
            "tokens": self._require_fitted(),
            "classes": None if self.classes is None else list(self.classes),
        }

    def to_json(self) -> str:
        """The tokenizer as JSON text (UTF-8, one token per line)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: Any, *, where: str | None = None) -> Tokenizer:
        """Rebuild a tokenizer from :meth:`to_dict`'s output, checking every field."""
        _check_tokenizer_dict(data, where)
        tok = cls(data["level"], vocab_size=data["vocab_size"], lower=data["lower"], oov_token=data["oov_token"])
        tok._set_tokens(data["tokens"])
        tok.classes = None if data["classes"] is None else tuple(data["classes"])
        return tok

    @classmethod
    def from_json(cls, text: str, *, where: str | None = None) -> Tokenizer:
        """Rebuild a tokenizer from :meth:`to_json`'s text."""
        return cls.from_dict(loads_json(text, where or "<tokenizer>", document="a tokenizer file"), where=where)

    def save(self, path: str | Path) -> None:
        """Write the tokenizer as JSON, atomically (an interrupted save leaves the old file)."""
        write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Read a tokenizer written by :meth:`save`."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError(
                "tokenizer file not found",
                where=str(path),
                fix="pass the tokenizer file saved next to the trained model",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError("cannot read the tokenizer file", where=str(path), received=str(exc)) from None
        return cls.from_json(text, where=str(path))

    def __repr__(self) -> str:
        size = "unfitted" if self.tokens is None else f"{len(self.tokens)} tokens"
        return f"Tokenizer({self.level!r}, vocab_size={self.vocab_size}, {size})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def _texts(texts: Iterable[str]) -> Iterable[str]:
    """``texts``, refusing one bare string (iterating it would treat every character as a text)."""
    if isinstance(texts, str):
        raise DataError(
            "expected a list of texts, got one string",
            received=f"{texts!r:.60}",
            fix="wrap it in a list: encode([text]), or use encode_one(text)",
        )
    return texts


def _check_tokenizer_dict(data: Any, where: str | None) -> None:
    """Raise a :class:`DataError` naming the first field of a tokenizer dict that is wrong."""
    at = where or "<tokenizer>"

    def bad(field: str, received: Any, expected: str) -> DataError:
        return DataError(
            f"invalid tokenizer: field `{field}`",
            where=at,
            received=f"{received!r:.80}",
            expected=expected,
            fix="use the tokenizer file written by rnnspec at training time (Tokenizer.save)",
        )

    if not isinstance(data, dict) or data.get("format") != TOKENIZER_FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise bad("format", got, f"{TOKENIZER_FORMAT!r}")
    if data.get("version") != _TOKENIZER_VERSION:
        raise bad("version", data.get("version"), f"{_TOKENIZER_VERSION} (this rnnspec's tokenizer format)")
    expected_keys = {"format", "version", "level", "lower", "vocab_size", "oov_token", "tokens", "classes"}
    if set(data) != expected_keys:
        raise bad("keys", sorted(data), f"exactly {sorted(expected_keys)}")
    if data["level"] not in ("word", "char"):
        raise bad("level", data["level"], "'word' or 'char'")
    if not isinstance(data["lower"], bool):
        raise bad("lower", data["lower"], "true or false")
    size = data["vocab_size"]
    if size is not None and not is_int_at_least(size, 2):
        raise bad("vocab_size", size, "an integer >= 2, or null")
    if not isinstance(data["oov_token"], str):
        raise bad("oov_token", data["oov_token"], "a string")
    tokens = data["tokens"]
    one_char = data["level"] == "char"
    if (
        not isinstance(tokens, list)
        or not all(isinstance(t, str) and t and (len(t) == 1 or not one_char) for t in tokens)
        or len(set(tokens)) != len(tokens)
    ):
        raise bad("tokens", tokens, "a list of distinct non-empty strings (single characters at char level)")
    if size is not None and len(tokens) + 2 > size:
        raise bad("tokens", f"{len(tokens)} tokens", f"at most vocab_size - 2 = {size - 2} tokens")
    classes = data["classes"]
    if classes is not None and (
        not isinstance(classes, list)
        or not all(isinstance(c, str) for c in classes)
        or len(set(classes)) != len(classes)
    ):
        raise bad("classes", classes, "null, or a list of distinct strings")
