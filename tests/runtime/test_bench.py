"""`rnnspec bench`: the GEMMs of a step counted by an independent formula, the data it times, the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main
from rnnspec.runtime.bench import Gemm, gemm_flops, numpy_matmul_seconds, step_gemms, synthetic_data
from rnnspec.runtime.training import _check_xy, training_of
from tests.conftest import SPECS
from tests.parity import backend_or_skip


def test_the_gemms_of_an_lstm_step():
    spec = rnnspec.load_spec(SPECS / "imdb_lstm.yaml")  # Embedding(10000, 32) -> LSTM(32) -> Dense(1)
    gemms = step_gemms(spec, batch=128, steps=500)
    assert gemms == [Gemm(128 * 500, 32, 4 * 32), Gemm(128, 32, 4 * 32, 500), Gemm(128, 32, 1)]
    # forward: x·W over all steps, h·U per step, the head; x2 flops per multiply-add; x3 with the backward pass
    forward = 2 * (128 * 500 * 32 * 128 + 500 * 128 * 32 * 128 + 128 * 32 * 1)
    assert gemm_flops(gemms) == 3 * forward


def test_the_gemms_of_a_stacked_bidirectional_gru_with_a_per_step_head():
    spec = rnnspec.loads_spec(
        "rnnspec: 1\nname: t\ninput: {features: 7}\nrecurrent:\n"
        "  - {cell: gru, units: 5, bidirectional: true, return_sequences: true}\n"
        "  - {cell: simple_rnn, units: 3, return_sequences: true}\n"
        "head: {units: 2, activation: softmax}\n"
    )
    gemms = step_gemms(spec, batch=4, steps=9)
    want = [Gemm(36, 7, 15), Gemm(4, 5, 15, 9)] * 2 + [Gemm(36, 10, 3), Gemm(4, 3, 3, 9), Gemm(36, 3, 2)]
    assert gemms == want


def test_the_gemms_of_a_conv_front_follow_the_steps_each_layer_sees():
    """specs/imdb_cnn_lstm.yaml on 100 steps: Conv1D(64, 5, valid) leaves 96 steps, its product is every window
    (5 x 128 inputs) by the 64 filters; MaxPooling1D(4) leaves 24 steps for the LSTM(70)."""
    spec = rnnspec.load_spec(SPECS / "imdb_cnn_lstm.yaml")
    gemms = step_gemms(spec, batch=30, steps=100)
    assert gemms == [Gemm(30 * 96, 5 * 128, 64), Gemm(30 * 24, 64, 4 * 70), Gemm(30, 70, 4 * 70, 24), Gemm(30, 70, 1)]


def test_numpy_floor_times_the_products():
    assert numpy_matmul_seconds([(64, 64, 64, 10)], repeats=1) > 0
    assert numpy_matmul_seconds([], repeats=1) >= 0


@pytest.mark.parametrize("spec_name", ["imdb_lstm.yaml", "pos_tagger.yaml", "weather_regression.yaml"])
def test_generated_data_fits_the_spec_and_counts_real_tokens(spec_name: str):
    spec = rnnspec.load_spec(SPECS / spec_name)
    steps = spec.input.seq_len or 30
    x, y, tokens = synthetic_data(spec, 16, steps)
    _check_xy(spec, training_of(spec), x, y, "bench")  # raises unless x and y fit the spec and its loss
    if spec.masked:  # pre-padded rows; padding is not counted
        real = x != 0 if spec.input.vocab_size is not None else ~(x == spec.input.mask_value).all(axis=-1)
        assert tokens == int(real.sum()) < real.size
        assert (real[:, 1:] >= real[:, :-1]).all()  # pre-padding: once real, real to the end
    else:
        assert tokens == 16 * steps


def test_bench_reports_every_backend_as_json(capsys: pytest.CaptureFixture[str]):
    backend_or_skip("torch")
    argv = ["bench", str(SPECS / "imdb_lstm.yaml"), "-b", "torch", "-b", "numpy", "--batch-size", "8", "--batches", "2"]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["steps"] == 500 and report["batch_size"] == 8 and report["real_tokens_per_epoch"] == 8000
    assert report["gemm_floor"]["measured_with"] == "torch's matmul" and report["gemm_floor"]["step_s"] > 0
    torch_row, numpy_row = report["backends"]
    assert torch_row["backend"] == "torch" and torch_row["train_step_s"] > 0
    assert torch_row["train_real_tokens_per_s"] == pytest.approx(8000 / (2 * torch_row["train_step_s"]))
    assert torch_row["train_step_over_floor"] == pytest.approx(
        torch_row["train_step_s"] / report["gemm_floor"]["step_s"]
    )
    assert numpy_row["train_step_s"] is None and "forward-only" in numpy_row["note"]
    assert numpy_row["predict_real_tokens_per_s"] > 0
    # prediction against its own floor, the forward products alone
    floor = report["gemm_floor"]["forward_s"]
    assert 0 < floor < report["gemm_floor"]["step_s"]
    for row in (torch_row, numpy_row):
        assert row["predict_step_s"] == pytest.approx(8000 / (2 * row["predict_real_tokens_per_s"]))
        assert row["predict_over_floor"] == pytest.approx(row["predict_step_s"] / floor)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "step / floor" in out and "predict / floor" in out and "GFLOP forward + backward" in out


def test_bench_refuses_a_seq_len_the_spec_does_not_take(capsys: pytest.CaptureFixture[str]):
    assert main(["bench", str(SPECS / "imdb_lstm.yaml"), "-b", "numpy", "--seq-len", "20"]) == 1
    assert "--seq-len 20 differs from the spec's input.seq_len: 500" in capsys.readouterr().err
    assert main(["bench", str(SPECS / "imdb_lstm.yaml"), "-b", "nosuch"]) == 2


def test_generated_targets_are_seeded():
    spec = rnnspec.load_spec(SPECS / "imdb_lstm.yaml")
    a, b = synthetic_data(spec, 4, 500, seed=1), synthetic_data(spec, 4, 500, seed=1)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
