"""Parameter counts of every shipped spec against published and measured reference numbers.

The reference numbers come from ../shared/seeds/README.md (Keras 3 `count_params()` and the seeds'
printed summaries) and from PyTorch's own modules, not from rnnspec. Where Keras or PyTorch is
installed, the same models are also written by hand in that framework and counted there.
"""

from __future__ import annotations

import pytest

from rnnspec import analyze, load_spec
from rnnspec.lang.analysis import recurrent_params
from rnnspec.lang.spec import CELL_TAGS, GRUSpec, LSTMSpec, SimpleRNNSpec
from tests.conftest import SPECS

# spec file -> per-layer Keras counts (seeds README / issue table)
KERAS_COUNTS = {
    "imdb_simplernn.yaml": [320_000, 2_080, 33],
    "simplernn_sequences.yaml": [320_000, 2_080],
    "stacked_simplernn.yaml": [320_000, 2_080, 2_080, 2_080, 2_080],
    "onehot_simplernn.yaml": [4_256, 33],
    "embedding_simplernn8.yaml": [32_000, 328, 9],
    "imdb_lstm.yaml": [320_000, 8_320, 33],
    "reuters_gru.yaml": [2_560_000, 394_752, 148_224, 5_934],
    "bidirectional_lstm.yaml": [320_000, 16_640],
    "char_rnn_hello.yaml": [171],
    # spec 1.1 models, counted by hand from the formulas of reference §1.1-1.7 (0 for Masking/Dropout):
    # TF's text-classification tutorial prints 64,000 / 66,048 / 8,256 / 65 (total 138,369)
    "tf_text_classification.yaml": [64_000, 66_048, 8_256, 65],
    "bilstm_dropout.yaml": [32_000, 0, 16_640, 0, 4 * (16 * (64 + 16) + 16), 0, 17],
    "weather_regression.yaml": [0, 4 * (32 * (3 + 32) + 32), 33],
    "pos_tagger.yaml": [200 * 32, 3 * (32 * (32 + 32) + 2 * 32), 32 * 32 + 32, 32 * 7 + 7],
    # spec 1.2: Keras's imdb_cnn_lstm example (Conv1D k·in·filters + filters; tests/test_conv1d.py builds it in Keras)
    "imdb_cnn_lstm.yaml": [20_000 * 128, 0, 5 * 128 * 64 + 64, 0, 4 * (70 * (64 + 70) + 70), 71, 0],
    # a stacked LSTM with BatchNormalization (4 per feature: gamma, beta, moving mean and variance;
    # tests/test_batch_norm.py builds it in Keras)
    "stacked_lstm_batchnorm.yaml": [
        10_000 * 64,
        4 * (64 * (64 + 64) + 64),
        4 * 64,
        4 * (32 * (64 + 32) + 32),
        4 * 32,
        32 * 16 + 16,
        17,
    ],
    # an LSTM autoencoder (RepeatVector: 0) and the toxic-comment BiGRU with global max pooling (2 directions x
    # 3 gates x (units x (inputs + units) + Keras's two biases)); counted by hand from the same formulas
    "lstm_autoencoder.yaml": [4 * (100 * (1 + 100) + 100), 0, 4 * (100 * (100 + 100) + 100), 100 + 1],
    "toxic_bigru.yaml": [20_000 * 128, 2 * 3 * (50 * (128 + 50) + 2 * 50), 0, 0, 100 * 50 + 50, 0, 51],
}
KERAS_TOTALS = {
    "imdb_simplernn.yaml": 322_113,
    "simplernn_sequences.yaml": 322_080,
    "stacked_simplernn.yaml": 328_320,
    "onehot_simplernn.yaml": 4_289,
    "embedding_simplernn8.yaml": 32_337,
    "imdb_lstm.yaml": 328_353,
    "reuters_gru.yaml": 3_108_910,
    "bidirectional_lstm.yaml": 336_640,
    "char_rnn_hello.yaml": 171,
    "tf_text_classification.yaml": 138_369,
    "bilstm_dropout.yaml": 53_841,
    "weather_regression.yaml": 4_641,
    "pos_tagger.yaml": 14_023,
    "imdb_cnn_lstm.yaml": 2_638_895,
    "stacked_lstm_batchnorm.yaml": 686_369,
    "lstm_autoencoder.yaml": 121_301,
    "toxic_bigru.yaml": 2_619_101,
}
# torch convention: nn.RNN(32,32) 2,112; nn.LSTM(32,32) 8,448; nn.LSTM(32,32,bidirectional) 16,896;
# nn.GRU(256,256) 394,752; nn.GRU(256,128) 148,224; nn.RNN(9,9) 180 (seeds README, reference §1.6-1.7).
TORCH_RECURRENT = {
    "imdb_simplernn.yaml": [2_112],
    "imdb_lstm.yaml": [8_448],
    "bidirectional_lstm.yaml": [16_896],
    "reuters_gru.yaml": [394_752, 148_224],
    "char_rnn_hello.yaml": [180],
    "stacked_simplernn.yaml": [2_112] * 4,
}


def test_every_shipped_spec_has_reference_counts():
    assert sorted(p.name for p in SPECS.glob("*.yaml")) == sorted(KERAS_COUNTS)


@pytest.mark.parametrize("spec_file", sorted(KERAS_COUNTS))
def test_keras_convention_counts(spec_file: str):
    result = analyze(load_spec(SPECS / spec_file), "keras")
    assert [row.params for row in result.layers] == KERAS_COUNTS[spec_file]
    assert result.total_params == KERAS_TOTALS[spec_file]
    assert result.total_params == sum(row.params for row in result.layers)


@pytest.mark.parametrize("spec_file", sorted(TORCH_RECURRENT))
def test_torch_convention_recurrent_counts(spec_file: str):
    result = analyze(load_spec(SPECS / spec_file), "torch")
    assert [r.params for r in result.layers if r.kind in CELL_TAGS] == TORCH_RECURRENT[spec_file]


def test_char_rnn_uses_its_own_convention_by_default():
    assert analyze(load_spec(SPECS / "char_rnn_hello.yaml")).total_params == 180


@pytest.mark.parametrize(
    ("layer", "input_dim", "expected"),
    [
        # reference §1.7, checked against Keras 3.15.1 and published summaries
        (GRUSpec(cell="gru", units=256, reset_after=False), 256, 393_984),
        (GRUSpec(cell="gru", units=128, reset_after=False), 256, 147_840),
        (GRUSpec(cell="gru", units=64, reset_after=False), 256, 61_632),
        (LSTMSpec(cell="lstm", units=128), 64, 98_816),
        (SimpleRNNSpec(cell="simple_rnn", units=16), 32, 784),
        (SimpleRNNSpec(cell="simple_rnn", units=64), 32, 6_208),
        (SimpleRNNSpec(cell="simple_rnn", units=10), 2, 130),
    ],
    ids=["gru256-ra-false", "gru128-ra-false", "gru64-ra-false", "lstm128", "rnn16", "rnn64", "rnn10"],
)
def test_published_layer_counts(layer, input_dim: int, expected: int):
    assert recurrent_params(layer, input_dim, "keras") == expected


def test_use_bias_false_drops_every_bias():
    layer = LSTMSpec(cell="lstm", units=4, use_bias=False)
    assert recurrent_params(layer, 3, "keras") == recurrent_params(layer, 3, "torch") == 4 * 4 * (3 + 4)
