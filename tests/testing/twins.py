"""Hand-written PyTorch twins of Keras models, each with switches that plant one porting mistake: the mutation
test of rnnspec.testing's catalogue. Two sets: DESIGN (used while writing the catalogue's rules) and HELD_OUT
(written after the rules, never used to change them). Each case: the Keras model, the twin class, and for each
planted mistake the name the catalogue should give it.

Small sizes, so that a comparison takes about a second."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import torch
import torch.nn.functional as F
from torch import nn

VOCAB, EMBED, UNITS, FEATURES, T = 30, 6, 5, 4, 7


@dataclass(frozen=True)
class Case:
    keras_model: Callable[[], keras.Model]
    twin: Callable[..., nn.Module]
    planted: dict[str, str]
    """The switch planted in the twin → the name the catalogue should give it."""


def masked_loop(cell: nn.Module, e: torch.Tensor, keep: torch.Tensor, units: int, lstm: bool) -> torch.Tensor:
    """Keras's mask in a step loop: a padded step keeps the state. Outputs at every step, (batch, time, units)."""
    h = e.new_zeros(1, len(e), units)
    c = e.new_zeros(1, len(e), units)
    outs = []
    for t in range(e.shape[1]):
        if lstm:
            _, (h2, c2) = cell(e[:, t : t + 1], (h, c))
        else:
            _, h2 = cell(e[:, t : t + 1], h)
            c2 = c
        k = keep[:, t][None, :, None]
        h, c = torch.where(k, h2, h), torch.where(k, c2, c)
        outs.append(h[0])
    return torch.stack(outs, 1)


# -- design set --------------------------------------------------------------------------------------------------


def keras_imdb() -> keras.Model:
    return keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(VOCAB, EMBED, mask_zero=True),
        keras.layers.LSTM(UNITS),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(1, activation="sigmoid"),
    ])  # fmt: skip


class Imdb(nn.Module):
    """IMDB-style embedding + LSTM with Keras's mask (pre-padded rows), dropout, sigmoid."""

    def __init__(self, mistake: str | None = None):
        super().__init__()
        self.mistake = mistake
        self.embedding = nn.Embedding(VOCAB, EMBED)
        self.lstm = nn.LSTM(EMBED, UNITS, batch_first=True)
        self.dropout = nn.Dropout(0.3)
        self.fc = nn.Linear(UNITS, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.embedding(x)
        if self.mistake == "first":
            last = self.lstm(e)[0][:, 0]
        elif self.mistake == "post":
            lengths = (x != 0).sum(1)
            last = self.lstm(e)[0][torch.arange(len(x)), lengths - 1]
        elif self.mistake == "pad1":
            last = masked_loop(self.lstm, e, x != 1, UNITS, lstm=True)[:, -1]
        else:
            last = masked_loop(self.lstm, e, x != 0, UNITS, lstm=True)[:, -1]
        dropped = F.dropout(last, 0.3) if self.mistake == "functional_dropout" else self.dropout(last)
        logits = self.fc(dropped)
        if self.mistake == "logits":
            return logits
        out = torch.sigmoid(logits)
        return torch.sigmoid(out) if self.mistake == "twice" else out


def keras_bigru() -> keras.Model:
    return keras.Sequential([
        keras.Input((T, FEATURES)),
        keras.layers.Bidirectional(keras.layers.GRU(4)),
        keras.layers.Dense(3, activation="softmax"),
    ])  # fmt: skip


class BiGRU(nn.Module):
    def __init__(self, mistake: str | None = None):
        super().__init__()
        self.mistake = mistake
        self.gru = nn.GRU(FEATURES, 4, batch_first=mistake != "batch_first", bidirectional=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, h = self.gru(x)
        if self.mistake == "swapped":
            last = torch.cat([h[-1], h[-2]], 1)
        elif self.mistake in ("wrong_end", "batch_first"):
            last = out[:, -1]
        else:
            last = torch.cat([h[-2], h[-1]], 1)
        logits = self.fc(last)
        if self.mistake == "log_softmax":
            return F.log_softmax(logits, -1)
        return torch.sigmoid(logits) if self.mistake == "sigmoid" else torch.softmax(logits, -1)


def keras_tagger() -> keras.Model:
    return keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(VOCAB, EMBED, mask_zero=True),
        keras.layers.LSTM(UNITS, return_sequences=True),
        keras.layers.Dense(4, activation="softmax"),
    ])  # fmt: skip


class Tagger(nn.Module):
    """A per-step tagger: Keras's mask in a step loop, softmax at every step."""

    def __init__(self, mistake: str | None = None):
        super().__init__()
        self.mistake = mistake
        self.embedding = nn.Embedding(VOCAB, EMBED)
        self.lstm = nn.LSTM(EMBED, UNITS, batch_first=mistake != "batch_first")
        self.fc = nn.Linear(UNITS, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.embedding(x)
        if self.mistake in ("batch_first", "no_mask"):
            seq = self.lstm(e)[0]
        else:
            seq = masked_loop(self.lstm, e, x != 0, UNITS, lstm=True)
        logits = self.fc(seq)
        if self.mistake == "log_softmax":
            return F.log_softmax(logits, -1)
        out = torch.softmax(logits, -1)
        return torch.softmax(out, -1) if self.mistake == "twice" else out


def keras_stacked() -> keras.Model:
    return keras.Sequential([
        keras.Input((T, FEATURES)),
        keras.layers.LSTM(UNITS, return_sequences=True),
        keras.layers.LSTM(UNITS),
        keras.layers.Dense(1),
    ])  # fmt: skip


class Stacked(nn.Module):
    def __init__(self, mistake: str | None = None):
        super().__init__()
        self.mistake = mistake
        self.lstm = nn.LSTM(FEATURES, UNITS, num_layers=2, batch_first=mistake != "batch_first")
        self.fc = nn.Linear(UNITS, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, (h, _) = self.lstm(x)
        if self.mistake == "layer0":
            last = h[0]
        elif self.mistake == "first":
            last = out[:, 0]
        elif self.mistake == "batch_first":
            last = out[:, -1]
        else:
            last = h[-1]
        y = self.fc(last)
        return torch.sigmoid(y) if self.mistake == "sigmoid" else y


DESIGN = {
    "imdb": Case(keras_imdb, Imdb, {
        "first": "first_step", "post": "post_padding", "pad1": "padding_index", "logits": "activation_missing",
        "twice": "activation_twice", "functional_dropout": "dropout_at_evaluation",
    }),
    "bigru": Case(keras_bigru, BiGRU, {
        "swapped": "directions_swapped", "wrong_end": "backward_wrong_end", "batch_first": "batch_first",
        "log_softmax": "log_softmax", "sigmoid": "activation_wrong",
    }),
    "tagger": Case(keras_tagger, Tagger, {
        "batch_first": "batch_first", "no_mask": "mask_dropped", "log_softmax": "log_softmax",
        "twice": "activation_twice",
    }),
    "stacked": Case(keras_stacked, Stacked, {
        "layer0": "hidden_state_layer", "first": "first_step", "batch_first": "batch_first",
        "sigmoid": "activation_extra",
    }),
}  # fmt: skip
