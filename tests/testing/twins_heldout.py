"""The held-out twins: written after the catalogue's rules, in other styles (hand-written cells, packed sequences,
stacked bidirectional layers), and never used to change the rules. Their score is the one docs/conformance.md
reports."""

from __future__ import annotations

import keras
import torch
import torch.nn.functional as F
from torch import nn

from tests.testing.twins import EMBED, FEATURES, VOCAB, Case

T = 6


def keras_gru_sentiment() -> keras.Model:
    return keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(VOCAB, EMBED, mask_zero=True),
        keras.layers.GRU(4),
        keras.layers.Dense(1, activation="sigmoid"),
    ])  # fmt: skip


class GRUSentiment(nn.Module):
    """A GRU cell written out, Keras's mask as a where over steps; the parameters kept in an nn.GRU."""

    def __init__(self, mistake: str | None = None):
        super().__init__()
        self.mistake = mistake
        self.emb = nn.Embedding(VOCAB, EMBED)
        self.gru = nn.GRU(EMBED, 4, batch_first=True)
        self.out = nn.Linear(4, 1)

    def cell(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        g = self.gru
        xr, xz, xn = (x @ g.weight_ih_l0.T + g.bias_ih_l0).chunk(3, -1)
        hr, hz, hn = (h @ g.weight_hh_l0.T + g.bias_hh_l0).chunk(3, -1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        return (1 - z) * torch.tanh(xn + r * hn) + z * h

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        e = self.emb(ids)
        pad = 1 if self.mistake == "pad1" else 0
        h = e.new_zeros(len(ids), 4)
        states = []
        for t in range(ids.shape[1]):
            new = self.cell(e[:, t], h)
            h = new if self.mistake in ("first", "packed") else torch.where((ids[:, t] != pad)[:, None], new, h)
            states.append(h)
        if self.mistake == "first":
            h = states[0]
        elif self.mistake == "packed":  # what pack_padded_sequence's h_n holds: the state at length - 1
            lengths = (ids != 0).sum(1).clamp_min(1)
            h = torch.stack(states, 1)[torch.arange(len(ids)), lengths - 1]
        if self.mistake == "dropout":
            h = F.dropout(h, 0.5)
        logit = self.out(h)
        return logit if self.mistake == "logits" else torch.sigmoid(logit)


def keras_bi_stack() -> keras.Model:
    return keras.Sequential([
        keras.Input((T, FEATURES)),
        keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True)),
        keras.layers.Bidirectional(keras.layers.LSTM(3)),
        keras.layers.Dense(2, activation="softmax"),
    ])  # fmt: skip


class BiStack(nn.Module):
    """nn.LSTM(num_layers=2, bidirectional=True): h_n is (layer 0 fwd, layer 0 bwd, layer 1 fwd, layer 1 bwd)."""

    def __init__(self, mistake: str | None = None):
        super().__init__()
        self.mistake = mistake
        self.rnn = nn.LSTM(FEATURES, 3, num_layers=2, bidirectional=True, batch_first=mistake != "batch_first")
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, (h, _) = self.rnn(x)
        pick = {
            "layer0": lambda: torch.cat([h[0], h[1]], -1),
            "swapped": lambda: torch.cat([h[-1], h[-2]], -1),
            "wrong_end": lambda: out[:, -1],
            "batch_first": lambda: out[:, -1],
        }
        feats = pick.get(self.mistake, lambda: torch.cat([h[-2], h[-1]], -1))()
        p = torch.softmax(self.head(feats), dim=-1)
        return torch.softmax(p, dim=-1) if self.mistake == "twice" else p


def keras_rnn_regressor() -> keras.Model:
    return keras.Sequential([
        keras.Input((T, FEATURES)),
        keras.layers.SimpleRNN(4, return_sequences=True),
        keras.layers.Dense(2),
    ])  # fmt: skip


class RNNRegressor(nn.Module):
    """A per-step regression with nn.RNN."""

    def __init__(self, mistake: str | None = None):
        super().__init__()
        self.mistake = mistake
        self.rnn = nn.RNN(FEATURES, 4, batch_first=mistake != "batch_first")
        self.linear = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(self.rnn(x)[0])
        if self.mistake == "sigmoid":
            return torch.sigmoid(y)
        return torch.softmax(y, -1) if self.mistake == "softmax" else y


def keras_classifier() -> keras.Model:
    return keras.Sequential([
        keras.Input((T, FEATURES)),
        keras.layers.LSTM(4),
        keras.layers.Dense(3, activation="softmax"),
    ])  # fmt: skip


class Classifier(nn.Module):
    def __init__(self, mistake: str | None = None):
        super().__init__()
        self.mistake = mistake
        self.lstm = nn.LSTM(FEATURES, 4, batch_first=True)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lstm(x)[0]
        last = out[:, 0] if self.mistake == "first" else out[:, -1]
        z = self.fc(last)
        if self.mistake == "log_softmax":
            return torch.log_softmax(z, 1)
        return torch.sigmoid(z) if self.mistake == "sigmoid" else torch.softmax(z, 1)


HELD_OUT = {
    "gru_sentiment": Case(keras_gru_sentiment, GRUSentiment, {
        "first": "first_step", "packed": "post_padding", "pad1": "padding_index", "logits": "activation_missing",
        "dropout": "dropout_at_evaluation",
    }),
    "bi_stack": Case(keras_bi_stack, BiStack, {
        "layer0": "hidden_state_layer", "swapped": "directions_swapped", "wrong_end": "backward_wrong_end",
        "batch_first": "batch_first", "twice": "activation_twice",
    }),
    "rnn_regressor": Case(keras_rnn_regressor, RNNRegressor, {
        "batch_first": "batch_first", "sigmoid": "activation_extra", "softmax": "activation_extra",
    }),
    "classifier": Case(keras_classifier, Classifier, {
        "first": "first_step", "log_softmax": "log_softmax", "sigmoid": "activation_wrong",
    }),
}  # fmt: skip
