"""rnnspec.testing.assert_equivalent on models written by hand, as users write them: a Keras model and a PyTorch
module of the same architecture are proven equivalent by one call, and each porting mistake planted in a
correct module is found and named (a mutation test of the checker)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.parity import backend_or_skip

backend_or_skip("torch")
backend_or_skip("keras")

import keras
import torch
from torch import nn

import rnnspec
from rnnspec.testing import assert_equivalent, compare

VOCAB, EMBED, UNITS, FEATURES, T = 40, 6, 5, 5, 9


# -- the Keras models (as a tutorial writes them) -------------------------------------------------------------


def keras_sentiment() -> keras.Model:
    return keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(VOCAB, EMBED, mask_zero=True),
        keras.layers.LSTM(UNITS),
        keras.layers.Dense(1, activation="sigmoid"),
    ])  # fmt: skip


def keras_gru() -> keras.Model:
    return keras.Sequential([
        keras.Input((T, FEATURES)),
        keras.layers.GRU(UNITS),
        keras.layers.Dense(3, activation="softmax"),
    ])  # fmt: skip


def keras_rnn() -> keras.Model:
    return keras.Sequential([keras.Input((T, FEATURES)), keras.layers.SimpleRNN(UNITS), keras.layers.Dense(2)])


def keras_bilstm() -> keras.Model:
    return keras.Sequential([
        keras.Input((T, FEATURES)),
        keras.layers.Bidirectional(keras.layers.LSTM(4)),
        keras.layers.Dense(1, activation="sigmoid"),
    ])  # fmt: skip


# -- the PyTorch modules (correct, with a switch for each mistake) --------------------------------------------


class Sentiment(nn.Module):
    """Embedding + LSTM + Linear; Keras's mask: a padded step keeps the state (a step loop over nn.LSTM)."""

    def __init__(self, mistake: str | None = None):
        super().__init__()
        self.mistake = mistake
        self.embedding = nn.Embedding(VOCAB, EMBED)
        self.lstm = nn.LSTM(EMBED, UNITS, batch_first=True)
        self.fc = nn.Linear(UNITS, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.embedding(x)
        if self.mistake == "mask_dropped":
            last = self.lstm(e)[0][:, -1]
        else:
            h = c = e.new_zeros(1, len(x), UNITS)
            for t in range(x.shape[1]):
                _, (h2, c2) = self.lstm(e[:, t : t + 1], (h, c))
                keep = (x[:, t] != 0)[None, :, None]
                h, c = torch.where(keep, h2, h), torch.where(keep, c2, c)
            last = h[0]
        logits = self.fc(last)
        return logits if self.mistake == "activation_missing" else torch.sigmoid(logits)


class HandGRU(nn.Module):
    """A GRU written out by hand (PyTorch's equations), its parameters kept in an nn.GRU."""

    def __init__(self, mistake: str | None = None):
        super().__init__()
        self.mistake = mistake
        self.gru = nn.GRU(FEATURES, UNITS, batch_first=True)
        self.fc = nn.Linear(UNITS, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gru
        h = x.new_zeros(len(x), UNITS)
        for t in range(x.shape[1]):
            xi = x[:, t] @ g.weight_ih_l0.T + g.bias_ih_l0
            hh = h @ g.weight_hh_l0.T + g.bias_hh_l0
            (x_r, x_z, x_n), (h_r, h_z, h_n) = xi.chunk(3, -1), hh.chunk(3, -1)
            if self.mistake == "gru_gate_order":  # Keras's z, r order read from PyTorch's weights
                (x_z, x_r), (h_z, h_r) = (x_r, x_z), (h_r, h_z)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            if self.mistake == "reset_before":
                n = torch.tanh(x_n + (r * h) @ g.weight_hh_l0[2 * UNITS :].T + g.bias_hh_l0[2 * UNITS :])
            else:
                n = torch.tanh(x_n + r * h_n)
            h = (1 - z) * n + z * h
        return torch.softmax(self.fc(h), -1)


class HandRNN(nn.Module):
    """A SimpleRNN written out by hand, its parameters kept in an nn.RNN."""

    def __init__(self, mistake: str | None = None):
        super().__init__()
        self.mistake = mistake
        self.rnn = nn.RNN(FEATURES, UNITS, batch_first=True)
        self.fc = nn.Linear(UNITS, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.rnn
        w_hh = r.weight_hh_l0 if self.mistake == "transposed" else r.weight_hh_l0.T
        b_hh = 0 if self.mistake == "recurrent_bias_dropped" else r.bias_hh_l0
        h = x.new_zeros(len(x), UNITS)
        for t in range(x.shape[1]):
            h = torch.tanh(x[:, t] @ r.weight_ih_l0.T + r.bias_ih_l0 + h @ w_hh + b_hh)
        return self.fc(h)


class BiLSTM(nn.Module):
    def __init__(self, mistake: str | None = None):
        super().__init__()
        self.mistake = mistake
        self.lstm = nn.LSTM(FEATURES, 4, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lstm(x)[0]
        # right: the forward direction's last step, the backward direction's first (where it ends)
        right = torch.cat([out[:, -1, :4], out[:, 0, 4:]], -1)
        last = out[:, -1] if self.mistake == "backward_wrong_end" else right
        return torch.sigmoid(self.fc(last))


CASES = {
    "sentiment": (keras_sentiment, Sentiment, ["mask_dropped", "activation_missing"]),
    "gru": (keras_gru, HandGRU, ["gru_gate_order", "reset_before"]),
    "rnn": (keras_rnn, HandRNN, ["transposed", "recurrent_bias_dropped"]),
    "bilstm": (keras_bilstm, BiLSTM, ["backward_wrong_end"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_hand_written_keras_model_and_torch_module_are_proven_equivalent(case: str):
    make_keras, make_torch, _ = CASES[case]
    report = assert_equivalent(make_keras(), make_torch())  # the spec is read from the Keras model
    assert report.passed and report.mistake is None
    names = [row.what for row in report.rows]
    assert names[:2] == ["parameters", "outputs (hard inputs)"] and any(n.startswith("gradient ") for n in names)
    assert ("outputs (long sequences, T=100)" in names) == (case == "sentiment")  # the one without a fixed length
    assert all(row.passed for row in report.rows)


@pytest.mark.parametrize(
    ("case", "mistake"), [(case, mistake) for case, (_, _, mistakes) in CASES.items() for mistake in mistakes]
)
def test_each_planted_porting_mistake_is_found_and_named(case: str, mistake: str):
    make_keras, make_torch, _ = CASES[case]
    with pytest.raises(AssertionError) as info:
        assert_equivalent(make_keras(), make_torch(mistake))
    message = str(info.value)
    assert "NOT equivalent" in message and "the second model behaves as if" in message, message
    report = compare(make_keras(), make_torch(mistake))
    expected = {"transposed": "transposed:{}/recurrent_kernel"}.get(mistake, mistake)
    rnn = next(row.what.split()[1].split("/")[0] for row in report.rows if row.what.startswith("gradient "))
    assert report.mistake == expected.format(rnn), report.text()  # the very mistake, not a neighbour


def test_the_message_says_where_and_which_rows():
    report = compare(keras_sentiment(), Sentiment("mask_dropped"))
    text = report.text()
    assert "outputs (hard inputs)" in text and "DIFFERENT at row" in text
    assert "differs on row 0 (pre-padded)" in text and "agrees on" in text  # full rows run the same steps
    assert "pack_padded_sequence" in text  # the fix


def test_a_backend_build_and_a_user_module_compare_on_the_spec():
    spec = rnnspec.loads_spec(
        "rnnspec: 1\nname: rnn\ninput: {features: 5}\nrecurrent: [{cell: simple_rnn, units: 5}]\nhead: {units: 2}\n"
    )
    assert assert_equivalent("torch", HandRNN(), spec).passed
    assert assert_equivalent("numpy", HandRNN(), spec, grads=False).passed
    report = compare("keras", HandRNN("transposed"), spec)
    assert not report.passed and report.mistake is not None and report.mistake.startswith("transposed")


def test_weights_that_do_not_fit_are_a_clear_failure():
    class Wrong(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(FEATURES, UNITS + 1, batch_first=True)
            self.fc = nn.Linear(UNITS + 1, 2)

        def forward(self, x):
            return self.fc(self.lstm(x)[0][:, -1])

    report = compare(keras_rnn(), Wrong())
    assert not report.passed and "does not fit" in (report.error or "")
    assert "could not compare" in report.text()


def test_the_users_models_are_left_as_they_were():
    keras_model, module = keras_gru(), HandGRU()
    before_keras = [w.numpy().copy() for w in keras_model.weights]
    before_torch = {k: v.clone() for k, v in module.state_dict().items()}
    module.fc.weight.grad = torch.ones_like(module.fc.weight)
    module.train()
    compare(keras_model, module)
    assert all(np.array_equal(w.numpy(), b) for w, b in zip(keras_model.weights, before_keras, strict=True))
    assert all(torch.equal(module.state_dict()[k], v) for k, v in before_torch.items())
    assert torch.equal(module.fc.weight.grad, torch.ones_like(module.fc.weight)) and module.training


class StackedGRU(nn.Module):
    """nn.GRU(4 -> 6) then a hand-written GRU(6 -> 3) that reads its gates in Keras's order from PyTorch's weights."""

    def __init__(self, mistake: str | None = None):
        super().__init__()
        self.mistake = mistake
        self.first = nn.GRU(FEATURES, 6, batch_first=True)
        self.second = nn.GRU(6, 3, batch_first=True)
        self.fc = nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = self.first(x)[0]
        g, h = self.second, seq.new_zeros(len(x), 3)
        for t in range(seq.shape[1]):
            (x_r, x_z, x_n) = (seq[:, t] @ g.weight_ih_l0.T + g.bias_ih_l0).chunk(3, -1)
            (h_r, h_z, h_n) = (h @ g.weight_hh_l0.T + g.bias_hh_l0).chunk(3, -1)
            if self.mistake:
                (x_z, x_r), (h_z, h_r) = (x_r, x_z), (h_r, h_z)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            h = (1 - z) * torch.tanh(x_n + r * h_n) + z * h
        return self.fc(h)


def test_stacked_layers_of_other_widths():
    model = keras.Sequential([keras.Input((T, FEATURES)), keras.layers.GRU(6, return_sequences=True),
                              keras.layers.GRU(3), keras.layers.Dense(1)])  # fmt: skip
    assert compare(model, StackedGRU()).passed
    assert compare(model, StackedGRU("gates")).mistake == "gru_gate_order"


class Packed(nn.Module):
    """The usual PyTorch port of a masked LSTM: lengths from the padding, pack_padded_sequence (post-padding)."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMBED)
        self.lstm = nn.LSTM(EMBED, UNITS, batch_first=True)
        self.fc = nn.Linear(UNITS, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lengths = (x != 0).sum(1)
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(x), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)  # fmt: skip
        return torch.sigmoid(self.fc(self.lstm(packed)[1][0][0]))


def test_a_module_that_raises_on_some_rows_is_reported_row_by_row():
    report = compare(keras_sentiment(), Packed())
    crashed = [row for row in report.rows if "runs row" in row.what]
    expected = ["the second model runs row 3 (fully padded)", "the second model runs row 3 (fully padded, T=100)"]
    assert [row.what for row in crashed] == expected, report.text()
    assert "ValueError" in crashed[0].note or "RuntimeError" in crashed[0].note
    outputs = next(row for row in report.rows if row.what == "outputs (hard inputs)")
    # packing reads post-padded rows right and pre-padded ones wrong: the rest is still compared
    assert "row 1 (post-padded)" in outputs.note.split("agrees on")[1] and "row 0 (pre-padded)" in outputs.note


class Tagger(nn.Module):
    """A per-step tagger through pack/pad: zeros at padded steps, where Keras carries the last output."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMBED)
        self.gru = nn.GRU(EMBED, UNITS, batch_first=True)
        self.fc = nn.Linear(UNITS, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e, h = self.embedding(x), x.new_zeros(len(x), UNITS, dtype=torch.float32)
        outputs = []
        for t in range(x.shape[1]):  # Keras's mask, with PyTorch's zeros at padded steps
            step = self.gru(e[:, t : t + 1], h[None])[1][0]
            keep = (x[:, t] != 0)[:, None]
            h = torch.where(keep, step, h)
            outputs.append(torch.where(keep, h, torch.zeros_like(h)))
        return torch.softmax(self.fc(torch.stack(outputs, 1)), -1)


def test_padded_steps_of_a_masked_tagger_are_not_compared():
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(VOCAB, EMBED, mask_zero=True),
                              keras.layers.GRU(UNITS, return_sequences=True),
                              keras.layers.Dense(3, activation="softmax")])  # fmt: skip
    assert assert_equivalent(model, Tagger()).passed


def test_a_squeezed_output_is_named():
    class Squeezed(Sentiment):
        def forward(self, x):
            return super().forward(x).squeeze(-1)

    report = compare(keras_sentiment(), Squeezed())
    assert "keeps a last axis of size 1 that the other squeezes away" in (report.cause or ""), report.text()


def test_a_spec_with_logits_differentiates_the_logits():
    spec = rnnspec.loads_spec(
        "rnnspec: 1\nname: logits\ninput: {vocab_size: 40}\nembedding: {output_dim: 6, mask_zero: true}\n"
        "recurrent: [{cell: lstm, units: 5}]\nhead: {units: 1}\n"
        "training: {loss: {name: binary_crossentropy, from_logits: true}}\n"
    )
    report = assert_equivalent("torch", Sentiment("activation_missing"), spec)
    loss = next(row for row in report.rows if row.what.startswith("loss"))
    assert loss.what == "loss (binary_crossentropy)" and loss.passed


def test_weight_map_renames_a_first_modules_keys():
    class Renamed(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = HandRNN()

        def forward(self, x):
            return self.cell(x)

    spec = rnnspec.loads_spec(
        "rnnspec: 1\nname: rnn\ninput: {features: 5}\nrecurrent: [{cell: simple_rnn, units: 5}]\nhead: {units: 2}\n"
    )
    names = {f"cell.{k}": k for k in HandRNN().state_dict()}
    assert assert_equivalent(Renamed(), "torch", spec, weight_map=names).passed
    with pytest.raises(AssertionError, match="weight_map names keys the module does not have"):
        assert_equivalent(Renamed(), "torch", spec, weight_map={"nope": "rnn.weight_ih_l0"})


def test_a_keras_gru_with_the_reset_gate_before_the_matmul():
    """Keras 2's GRU form has no recurrent bias: the shared weights keep PyTorch's bias_hn zero for it."""
    model = keras.Sequential([keras.Input((T, FEATURES)), keras.layers.GRU(UNITS, reset_after=False),
                              keras.layers.Dense(2)])  # fmt: skip
    report = compare(model, "numpy")
    note = f"gradients not compared: rnnspec's numpy build of {report.spec!r} runs forward only"
    assert report.passed and report.notes == [note]


def _sentiment_spec(optimizer: str) -> object:
    return rnnspec.loads_spec(
        f"rnnspec: 1\nname: sentiment\ninput: {{vocab_size: {VOCAB}}}\n"
        f"embedding: {{output_dim: {EMBED}, mask_zero: true}}\nrecurrent: [{{cell: lstm, units: {UNITS}}}]\n"
        f"head: {{units: 1, activation: sigmoid}}\ntraining: {{optimizer: {optimizer}, loss: binary_crossentropy}}\n"
    )


def test_the_embeddings_second_moment_is_its_own_row_where_the_optimizer_uses_it():
    """Same model, same gradients; but Keras's Adam adds a repeated token's squared gradients one by one, and
    torch.optim.Adam squares their sum: the row says so, and names it."""
    report = compare(keras_sentiment(), Sentiment(), _sentiment_spec("adam"), training=True)
    rows = [row for row in report.rows if row.what.startswith("embedding second moment")]
    assert len(rows) == 1 and not rows[0].passed and report.mistake == "embedding_second_moment", report.text()
    assert all(row.passed for row in report.rows if not row.what.startswith("embedding second moment"))
    assert "torch.optim squares the gradient summed over a token's occurrences" in (report.cause or "")
    sgd = compare(keras_sentiment(), Sentiment(), _sentiment_spec("sgd"))  # SGD reads the summed gradient
    assert sgd.passed and not any(row.what.startswith("embedding") for row in sgd.rows)
    ours = compare(keras_sentiment(), "torch", _sentiment_spec("adam"))  # rnnspec's trainer keeps Keras's rule
    assert ours.passed and not any(row.what.startswith("embedding") for row in ours.rows)


def test_by_default_the_second_moment_rule_warns_and_a_correct_port_passes():
    """The verdict is about the models: the optimizers' embedding rule is a warning (a pytest warning and a line
    of the report) unless training semantics are asked for (training=True, optimizers=, steps=)."""
    with pytest.warns(rnnspec.testing.ConformanceWarning, match="embedding_second_moment"):
        report = assert_equivalent(keras_sentiment(), Sentiment(), _sentiment_spec("adam"))
    row = next(row for row in report.rows if row.what.startswith("embedding second moment"))
    assert report.passed and row.warning and not row.within and report.mistake is None
    assert "WARNING" in row.line() and "warning: embedding_second_moment" in report.text()
    with pytest.raises(AssertionError, match="Keras's optimizer adds each occurrence"):
        assert_equivalent(keras_sentiment(), Sentiment(), _sentiment_spec("adam"), training=True)


def test_the_same_optimizer_in_both_loops_reaches_the_same_weights():
    """A GRU: Keras keeps two biases too, so the same SGD in both loops reaches the same weights."""
    module = HandGRU()
    optimizers = (keras.optimizers.SGD(0.1), torch.optim.SGD(module.parameters(), lr=0.1))
    report = compare(keras_gru(), module, optimizers=optimizers)
    steps = [row for row in report.rows if row.what.startswith("after 3 optimizer steps")]
    assert report.passed and len(steps) == 5, report.text()  # gru kernel, recurrent kernel, bias; dense
    assert next(row for row in report.rows if row.what == "optimizer settings").note.startswith("the same")


def test_an_lstms_two_torch_biases_each_take_a_step():
    """nn.LSTM's bias_ih and bias_hh both move by the full step: their sum, Keras's one bias, twice as far."""
    module = Sentiment()
    optimizers = (keras.optimizers.SGD(0.1), torch.optim.SGD(module.parameters(), lr=0.1))
    report = compare(keras_sentiment(), module, optimizers=optimizers)
    assert report.mistake == "two_biases_step" and "twice as far under SGD" in (report.cause or ""), report.text()


def test_pytorchs_rmsprop_defaults_are_named():
    module = Sentiment()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    optimizer = torch.optim.RMSprop(module.parameters())
    report = compare(keras_sentiment(), module, optimizers=(keras.optimizers.RMSprop(), optimizer))
    settings = next(row for row in report.rows if row.what == "optimizer settings")
    assert "learning_rate 0.001 vs 0.01" in settings.note and "rho 0.9 vs 0.99" in settings.note
    assert "epsilon inside the square root (Keras) vs outside the square root (PyTorch)" in settings.note
    assert report.mistake == "optimizer_epsilon" and "No torch.optim setting puts epsilon" in (report.cause or "")
    assert any(not row.passed for row in report.rows if row.what.startswith("after 3 optimizer steps"))
    assert all(torch.equal(module.state_dict()[k], v) for k, v in before.items())  # weights back
    assert not optimizer.state  # and the user's optimizer as it was (no steps taken)


def test_counts_and_long_sequences_are_rows_of_their_own():
    report = compare(keras_sentiment(), Sentiment())
    counts = next(row for row in report.rows if row.what == "parameters")
    keras_count = VOCAB * EMBED + 4 * UNITS * (EMBED + UNITS + 1) + UNITS + 1  # Keras: one LSTM bias
    assert counts.passed and counts.note.startswith(
        f"first {keras_count:,} in the keras convention; second {keras_count + 4 * UNITS:,} in the torch convention"
    )  # PyTorch's second bias: 4 x units more
    lstm = 4 * UNITS * (EMBED + UNITS + 1)
    assert f"{lstm:,} vs {lstm + 4 * UNITS:,}" in counts.note and f"{VOCAB * EMBED:,}," in counts.note
    long = next(row for row in report.rows if row.what == "outputs (long sequences, T=100)")
    assert long.passed and report.passed


def test_a_keras_2_gru_against_nn_gru_is_refused_with_the_reason():
    model = keras.Sequential([keras.Input((T, FEATURES)), keras.layers.GRU(UNITS, reset_after=False),
                              keras.layers.Dense(3, activation="softmax")])  # fmt: skip
    report = compare(model, HandGRU())
    assert not report.passed and "nn.GRU applies the reset gate after the matmul" in (report.error or "")


def test_a_log_softmax_head_differentiates_the_negative_log_likelihood():
    """Without a training section, a log_softmax head (PyTorch's taggers) is differentiated under NLLLoss, the
    cross-entropy on its log-probabilities, as it is trained; not under mse."""
    spec = rnnspec.loads_spec(
        "rnnspec: 1.2\nname: tagger\ninput: {vocab_size: 40}\nembedding: {output_dim: 6, mask_zero: true}\n"
        "recurrent: [{cell: gru, units: 5, return_sequences: true}]\nhead: {units: 4, activation: log_softmax}\n"
    )
    report = assert_equivalent("torch", "keras", spec)
    loss = next(row for row in report.rows if row.what.startswith("loss"))
    assert loss.what == "loss (sparse_categorical_crossentropy)" and loss.passed
    assert any(row.what.startswith("gradient") and row.passed for row in report.rows)
