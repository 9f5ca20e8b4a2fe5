"""The analytic counts against the frameworks' own counts, for the shipped specs and a table of variants.

Each model is written here directly with Keras layers (``count_params()``) or PyTorch modules
(``numel()``), independently of rnnspec's backends.
"""

from __future__ import annotations

import os

import pytest

from rnnspec import analyze, load_spec, spec_from_dict

from .conftest import SPECS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _variants():
    base = {"rnnspec": 1, "name": "v", "input": {"vocab_size": 50}, "embedding": {"output_dim": 6}}
    cases = {
        "gru-reset-after-false": [{"cell": "gru", "units": 5, "reset_after": False}],
        "gru-no-bias": [{"cell": "gru", "units": 5, "use_bias": False}],
        "lstm-no-bias": [{"cell": "lstm", "units": 5, "use_bias": False}],
        "bi-gru-sum": [
            {"cell": "gru", "units": 5, "bidirectional": True, "merge_mode": "sum", "return_sequences": True},
            {"cell": "lstm", "units": 3},
        ],
        "bi-rnn-concat-stack": [
            {"cell": "simple_rnn", "units": 4, "bidirectional": True, "return_sequences": True},
            {"cell": "gru", "units": 3, "bidirectional": True, "merge_mode": "ave"},
        ],
        "bi-lstm-mul": [{"cell": "lstm", "units": 7, "bidirectional": True, "merge_mode": "mul"}],
    }
    out = {}
    for name, stack in cases.items():
        out[name] = spec_from_dict({**base, "recurrent": stack, "head": {"units": 3, "activation": "softmax"}})
    out["features-input"] = spec_from_dict(
        {
            "rnnspec": 1,
            "name": "f",
            "input": {"features": 11, "seq_len": 4},
            "recurrent": [{"cell": "lstm", "units": 2}],
        }
    )
    for path in sorted(SPECS.glob("*.yaml")):
        out[path.stem] = load_spec(path)
    return out


VARIANTS = _variants()


def _keras_model(spec):
    """The spec's layers written with Keras's own classes, by hand (one Keras layer per spec layer)."""
    import keras

    layers = []
    if spec.input.mask_value is not None:
        layers.append(keras.layers.Masking(mask_value=spec.input.mask_value))
    if spec.embedding is not None:
        layers.append(keras.layers.Embedding(spec.input.vocab_size, spec.embedding.output_dim))
        inputs = keras.Input((spec.input.seq_len,), dtype="int32")
    else:
        inputs = keras.Input((spec.input.seq_len, spec.input.features))
    for entry in [*spec.recurrent, *spec.head_layers]:
        if entry.kind == "conv1d":
            layers.append(keras.layers.Conv1D(entry.filters, entry.kernel_size, strides=entry.strides,
                                              padding=entry.padding, activation=entry.activation))  # fmt: skip
        elif entry.kind == "max_pool":
            layers.append(keras.layers.MaxPooling1D(entry.pool_size, entry.strides, entry.padding))
        elif entry.kind == "activation":
            layers.append(keras.layers.Activation(entry.activation))
        elif entry.kind == "repeat_vector":
            layers.append(keras.layers.RepeatVector(entry.repeat_vector))
        elif entry.kind == "global_max_pool":
            layers.append(keras.layers.GlobalMaxPooling1D())
        elif entry.kind == "batch_norm":
            layers.append(keras.layers.BatchNormalization(center=entry.center, scale=entry.scale))
        elif hasattr(entry, "spatial_dropout"):
            layers.append(keras.layers.SpatialDropout1D(entry.spatial_dropout))
        elif not hasattr(entry, "cell") and hasattr(entry, "dropout"):
            layers.append(keras.layers.Dropout(entry.dropout))
        elif not hasattr(entry, "cell"):
            layers.append(keras.layers.Dense(entry.units, activation=entry.activation, use_bias=entry.use_bias))
        else:
            kw = {
                "return_sequences": entry.return_sequences,
                "use_bias": entry.use_bias,
                "activation": entry.activation,
            }
            if entry.cell == "simple_rnn":
                rnn = keras.layers.SimpleRNN(entry.units, **kw)
            elif entry.cell == "lstm":
                rnn = keras.layers.LSTM(entry.units, **kw)
            else:
                rnn = keras.layers.GRU(entry.units, reset_after=entry.reset_after, **kw)
            layers.append(keras.layers.Bidirectional(rnn, merge_mode=entry.merge_mode) if entry.bidirectional else rnn)
    x = inputs
    for layer in layers:
        x = layer(x)
    return layers


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_counts_equal_keras_count_params(name: str):
    pytest.importorskip("tensorflow", reason="Keras counts need the keras extra")
    spec = VARIANTS[name]
    layers = _keras_model(spec)
    assert [layer.count_params() for layer in layers] == [r.params for r in analyze(spec, "keras").layers]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_torch_convention_counts_equal_torch_modules(name: str):
    torch = pytest.importorskip("torch", reason="PyTorch counts need the torch extra")
    spec = VARIANTS[name]
    if any(getattr(layer, "reset_after", True) is False for layer in spec.cells):
        pytest.skip("nn.GRU has no reset_after=False form; its two-bias count is checked by formula")
    dims = {"simple_rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
    rows = analyze(spec, "torch").layers
    got = []
    for row in rows:
        layer = row.layer
        if row.kind in ("masking", "dropout", "spatial_dropout", "max_pool", "activation", "repeat_vector",
                        "global_max_pool"):  # fmt: skip
            module = torch.nn.Dropout(0.5) if "dropout" in row.kind else torch.nn.Identity()
        elif row.kind == "conv1d":
            module = torch.nn.Conv1d(row.input_dim, layer.filters, layer.kernel_size, bias=layer.use_bias)
        elif row.kind == "batch_norm":  # gamma / beta are parameters, the moving statistics buffers
            module = torch.nn.BatchNorm1d(row.input_dim, affine=layer.scale and layer.center)
            got.append(sum(p.numel() for p in module.parameters()) + 2 * module.running_mean.numel())
            continue
        elif row.kind == "embedding":
            module = torch.nn.Embedding(spec.input.vocab_size, spec.embedding.output_dim)
        elif row.kind == "dense":
            module = torch.nn.Linear(row.input_dim, layer.units, bias=layer.use_bias)
        else:
            module = dims[layer.cell](
                row.input_dim,
                layer.units,
                bias=layer.use_bias,
                bidirectional=layer.bidirectional,
                batch_first=True,
            )
        got.append(sum(p.numel() for p in module.parameters()))
    assert got == [r.params for r in rows]


@pytest.mark.parametrize("stem", sorted(p.stem for p in SPECS.glob("*.yaml")))
def test_summary_footer_equals_keras_summary(stem: str):
    pytest.importorskip("tensorflow", reason="needs the keras extra")
    import keras

    from rnnspec.lang.summary import render_summary

    spec = VARIANTS[stem]
    model = keras.Sequential(_keras_model(spec))
    lines: list[str] = []
    model.summary(print_fn=lambda text, **_: lines.append(text))
    keras_footer = [ln.rstrip() for ln in "\n".join(lines).splitlines() if "params:" in ln]
    ours = [ln for ln in render_summary(analyze(spec, "keras")).splitlines() if "params:" in ln]
    assert ours == keras_footer
