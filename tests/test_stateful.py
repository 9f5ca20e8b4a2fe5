"""``stateful: true`` recurrent layers: prediction over consecutive batches, as Keras's stateful RNNs.

References come from outside the code under test: Keras models written by hand with ``stateful=True`` and a
``batch_shape`` Input, whose own ``predict_on_batch`` over three consecutive batches (then after
``layer.reset_state()``) gives the expected outputs; the same weights are set in rnnspec's builds. Keras's
semantics pinned here: the final states of a batch (masked steps keep the state) are the initial states of the
next, per sample row and per direction of a ``Bidirectional``; ``reset_state()`` zeroes them.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import rnnspec
from rnnspec.lang.errors import RnnspecError, SpecError

from .kinds import hand_built
from .parity import backend_or_skip, random_weights

TOL = 1e-5
"""float32 forward outputs, absolute."""
BACKENDS = ["keras", "torch", "numpy"]
B = 4
"""The fixed batch size (Keras's batch_shape[0])."""


def _spec(**data: Any) -> rnnspec.ModelSpec:
    return rnnspec.spec_from_dict({"rnnspec": 1.2, "name": "stateful", **data})


# -- the spec ------------------------------------------------------------------------------------------------


def test_stateful_needs_a_fixed_batch_size():
    with pytest.raises(SpecError) as info:
        _spec(input={"features": 3}, recurrent=[{"cell": "lstm", "units": 2, "stateful": True}])
    message = str(info.value)
    assert "recurrent[0].stateful" in message and "add `batch_size: N` to `input`" in message
    spec = _spec(input={"features": 3, "batch_size": 8}, recurrent=[{"cell": "lstm", "units": 2, "stateful": True}])
    assert spec.stateful and spec.input.batch_size == 8
    assert rnnspec.spec_from_dict(spec.to_dict()) == spec


def test_a_batch_size_without_a_stateful_layer_is_refused():
    with pytest.raises(SpecError, match=re.escape("input.batch_size fixes the batch for stateful layers only")):
        _spec(input={"features": 3, "batch_size": 8}, recurrent=[{"cell": "lstm", "units": 2}])


# -- prediction over consecutive batches --------------------------------------------------------------------------


def _case(L: Any, name: str) -> tuple[rnnspec.ModelSpec, list[Any], tuple[int, ...]]:
    """The spec, the Keras layers (after a batch_shape Input) and the input shape of one sample."""
    if name == "stock-lstm":  # the stock-prediction notebooks: stacked stateful LSTMs, Dense(1)
        spec = _spec(
            input={"features": 2, "batch_size": B},
            recurrent=[{"cell": "lstm", "units": 6, "stateful": True, "return_sequences": True},
                       {"cell": "lstm", "units": 4, "stateful": True}],
            head={"units": 1},
        )  # fmt: skip
        layers = [L.LSTM(6, stateful=True, return_sequences=True), L.LSTM(4, stateful=True), L.Dense(1)]
        return spec, layers, (5, 2)
    if name == "masked-bidirectional":  # Masking, a stateful BiGRU (both directions carry), a stateless GRU
        spec = _spec(
            input={"features": 3, "batch_size": B, "mask_value": 0.0},
            recurrent=[{"cell": "gru", "units": 3, "stateful": True, "bidirectional": True, "return_sequences": True},
                       {"cell": "gru", "units": 2}],
            head={"units": 2},
        )  # fmt: skip
        layers = [L.Masking(0.0), L.Bidirectional(L.GRU(3, stateful=True, return_sequences=True)), L.GRU(2),
                  L.Dense(2)]  # fmt: skip
        return spec, layers, (6, 3)
    # token ids, mask_zero, a stateful SimpleRNN per step
    spec = _spec(
        input={"vocab_size": 15, "batch_size": B},
        embedding={"output_dim": 4, "mask_zero": True},
        recurrent=[{"cell": "simple_rnn", "units": 5, "stateful": True, "return_sequences": True}],
        head={"units": 3},
    )
    layers = [L.Embedding(15, 4, mask_zero=True), L.SimpleRNN(5, stateful=True, return_sequences=True), L.Dense(3)]
    return spec, layers, (6,)


CASES = ["stock-lstm", "masked-bidirectional", "tokens-simple-rnn"]


def _batches(spec: rnnspec.ModelSpec, sample: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    """Three consecutive batches; masked steps (pre- and post-padding, a fully padded row) where the spec masks."""
    rng = np.random.default_rng(seed)
    if spec.input.vocab_size is not None:
        xs = [rng.integers(1, spec.input.vocab_size, size=(B, *sample)) for _ in range(3)]
    else:
        xs = [rng.normal(size=(B, *sample)).astype(np.float32) for _ in range(3)]
    xs[1][0, :2] = 0
    xs[2][1, 3:] = 0
    xs[2][2] = 0
    return xs


def _hand_built(L: Any, case: str, seed: int = 1) -> tuple[rnnspec.ModelSpec, Any, dict[str, np.ndarray], tuple]:
    """The spec, the hand-written Keras model on a ``batch_shape`` Input (batch B) with random weights, and the
    shape of one sample."""
    spec, layers, sample = _case(L, case)
    model, weights = hand_built(spec, layers, seed)
    assert model.inputs[0].shape == (B, None, *sample[1:])
    return spec, model, weights, sample


def _reset(model: Any) -> None:
    for layer in model.layers:
        if getattr(layer, "stateful", False) or hasattr(layer, "forward_layer"):
            layer.reset_state()


@pytest.mark.parametrize("case", CASES)
def test_output_shapes_and_counts_equal_keras(L, case: str):
    """The summary's shapes carry the fixed batch, as Keras's do with a batch_shape Input."""
    from rnnspec.lang.analysis import analyze

    spec, hand, _, _ = _hand_built(L, case)
    rows = analyze(spec).layers
    assert [row.output_shape for row in rows] == [tuple(layer.output.shape) for layer in hand.layers]
    assert [row.params for row in rows] == [layer.count_params() for layer in hand.layers]


@pytest.mark.parametrize("case", CASES)
def test_three_consecutive_batches_and_a_reset_equal_keras(L, case: str):
    spec, hand, weights, sample = _hand_built(L, case)
    xs = _batches(spec, sample)
    expected = [np.asarray(hand.predict_on_batch(x)) for x in xs]
    _reset(hand)
    after_reset = np.asarray(hand.predict_on_batch(xs[1]))
    assert np.abs(after_reset - expected[1]).max() > 1e-3  # the premise: the carried states change the outputs
    for backend in BACKENDS:
        model = rnnspec.build(spec, backend, weights=weights)
        for k, x in enumerate(xs):
            assert np.abs(rnnspec.predict(model, x) - expected[k]).max() <= TOL, (backend, k)
        rnnspec.reset_states(model)
        assert np.abs(rnnspec.predict(model, xs[1]) - after_reset).max() <= TOL, backend
        if backend != "keras" or case == "stock-lstm":  # (Keras's own model.predict: slow to start, once is enough)
            rnnspec.reset_states(model)  # one call over the three batches carries the states as the three calls
            whole = rnnspec.predict(model, np.concatenate(xs))
            assert np.abs(whole - np.concatenate(expected)).max() <= TOL, backend


def test_a_batch_of_another_size_is_refused_with_the_reason(L):
    spec, _, weights, sample = _hand_built(L, "stock-lstm")
    model = rnnspec.build(spec, "numpy", weights=weights)
    x = _batches(spec, sample)[0]
    for bad, kwargs in ((x[:3], {}), (np.concatenate([x, x[:1]]), {}), (np.concatenate([x, x]), {"batch_size": 2})):
        with pytest.raises(RnnspecError, match=re.escape("batches of exactly input.batch_size = 4 samples")):
            rnnspec.predict(model, bad, **kwargs)


def test_a_stateless_spec_predicts_as_before_after_reset_states():
    spec = _spec(input={"features": 2}, recurrent=[{"cell": "lstm", "units": 3}])
    model = rnnspec.build(spec, "numpy", seed=0)
    x = np.ones((2, 4, 2), dtype=np.float32)
    first = rnnspec.predict(model, x)
    rnnspec.reset_states(model)
    assert np.array_equal(rnnspec.predict(model, x), first)


def test_the_torch_summary_leaves_the_carried_states():
    """The torch summary runs a probe batch through the model: the user's carried states are kept."""
    backend = backend_or_skip("torch")
    spec = _spec(input={"features": 2, "batch_size": B}, recurrent=[{"cell": "lstm", "units": 3, "stateful": True}])
    weights = random_weights(spec, 3)
    x = np.random.default_rng(0).normal(size=(2, B, 5, 2)).astype(np.float32)
    plain, probed = (rnnspec.build(spec, "torch", weights=weights) for _ in range(2))
    rnnspec.predict(plain, x[0])
    rnnspec.predict(probed, x[0])
    backend.summary(probed)
    assert np.array_equal(rnnspec.predict(probed, x[1]), rnnspec.predict(plain, x[1]))
    assert backend.notes(plain) == [
        "recurrent_0: step loop (stateful: each batch starts from the states the one before left)"
    ]


# -- training and export: refused with the reason ---------------------------------------------------------------


def test_training_is_refused_with_the_reason():
    spec = _spec(
        input={"features": 2, "batch_size": 2},
        recurrent=[{"cell": "lstm", "units": 3, "stateful": True}],
        head={"units": 1},
        training={"loss": "mse"},
    )
    model = rnnspec.build(spec, "numpy" if not _has("torch") else "torch", seed=0)
    with pytest.raises(RnnspecError, match=re.escape("recurrent_0 is stateful (stateful: true)")) as info:
        rnnspec.fit(model, np.zeros((4, 3, 2), np.float32), np.zeros((4, 1), np.float32))
    assert "prediction only" in str(info.value)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_check_compares_the_forward_over_consecutive_batches_and_says_why_no_training():
    """``rnnspec check`` of a stateful spec of batch 4 (its default 6 input rows are no multiple of it): the
    forward rows over two consecutive batches, and a note instead of a refused training-parity run."""
    from rnnspec.runtime.check import run_check

    spec = _spec(input={"features": 2, "batch_size": 4}, recurrent=[{"cell": "gru", "units": 3, "stateful": True}],
                 training={"loss": "mse"})  # fmt: skip
    report = run_check(spec, steps=5, backends=("numpy", "torch"))
    assert [row.check for row in report.rows] == ["params analytic vs torch", "forward numpy vs torch"]
    assert all(row.passed for row in report.rows)
    assert any("stateful layers are for prediction only" in note for note in report.notes)


# -- import ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["keras", pytest.param("h5", marks=pytest.mark.slow)])
def test_a_stateful_keras_file_imports_and_predicts_what_keras_predicts(L, fmt: str, tmp_path):
    from rnnspec.runtime.importing import import_model

    spec, hand, _, sample = _hand_built(L, "stock-lstm", seed=5)
    hand.save(tmp_path / f"model.{fmt}")
    imported, weights = import_model(tmp_path / f"model.{fmt}")
    assert imported.input.batch_size == B and [c.stateful for c in imported.cells] == [True, True]
    _reset(hand)
    xs = _batches(spec, sample, seed=2)
    expected = [np.asarray(hand.predict_on_batch(x)) for x in xs]
    for backend in BACKENDS:
        model = rnnspec.build(imported, backend, weights=weights)
        for k, x in enumerate(xs):
            assert np.abs(rnnspec.predict(model, x) - expected[k]).max() <= TOL, (backend, k)


def test_the_import_command_proves_a_stateful_file_against_keras_itself(L, tmp_path, capsys):
    """The proof runs the original file in batches of its batch_shape (3 here: the 8 hard inputs become 9 rows,
    three consecutive batches) and compares it with every build."""
    from rnnspec_backends.keras.runtime import keras

    from rnnspec.cli import main

    model = keras.Sequential([keras.Input((None, 2), batch_size=3), L.LSTM(4, stateful=True), L.Dense(1)])
    model.save(tmp_path / "stock.keras")
    assert main(["import", str(tmp_path / "stock.keras"), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "compared with the original model" in out
    assert out.count("original Keras model vs rnnspec") == len(BACKENDS) and "DIFFERENT" not in out
    spec = rnnspec.load_spec(tmp_path / "out" / "spec.yaml")
    assert spec.input.batch_size == 3 and spec.cells[0].stateful
