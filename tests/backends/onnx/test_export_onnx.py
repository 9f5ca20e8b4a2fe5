"""The ONNX export against the NumPy reference, run by onnxruntime.

Each case is a spec written inline; its canonical weights (seeded, biases made non-zero and
embeddings widened so that a layout bug cannot hide) are exported, the file is run by
onnxruntime on the CPU and compared with :func:`rnnspec_backends.numpy.forward` for two batch
sizes and two lengths that differ from ``seq_len``. Masked inputs have every padding pattern:
full, pre-padded, post-padded, a hole, fully padded, a single valid step at either end, and
scattered padding.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.lang.layers import RECURRENT_ACTIVATIONS
from tests.conftest import REPO

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
nb = pytest.importorskip("rnnspec_backends.numpy.model")
ox = pytest.importorskip("rnnspec_backends.onnx.export")

TOL = 1e-5
SEED = 7
BATCHES = (8, 3)
LENGTHS = (4, 9)
"""Time lengths of the inputs; the specs' ``seq_len`` (6) is neither."""

Padding = Callable[[int, np.random.Generator], np.ndarray]
PADDINGS: list[Padding] = [
    lambda t, rng: np.ones(t, bool),
    lambda t, rng: np.arange(t) >= t // 2,
    lambda t, rng: np.arange(t) < t - max(t // 3, 1),
    lambda t, rng: (np.arange(t) < t // 3) | (np.arange(t) >= t // 3 + 2),
    lambda t, rng: np.zeros(t, bool),
    lambda t, rng: np.arange(t) == t - 1,
    lambda t, rng: np.arange(t) == 0,
    lambda t, rng: rng.random(t) < 0.5,
]
"""Valid steps of a row: full, pre-padded, post-padded, a hole, fully padded, only the last step,
only the first step, scattered."""


def _spec(body: str) -> rnnspec.ModelSpec:
    return rnnspec.loads_spec(f"rnnspec: 1.1\nname: onnx-case\n{body}")


def _weights(spec: rnnspec.ModelSpec, seed: int = SEED) -> dict[str, np.ndarray]:
    """Canonical initial weights with random biases (zeros hide bias-layout bugs) and wider embeddings."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, value in rnnspec.initial_weights(spec, seed).items():
        if name.endswith("bias"):
            value = value + rng.normal(0.0, 0.5, size=value.shape)
        elif name.endswith("embeddings"):
            value = value * 20.0
        out[name] = value.astype(np.float32)
    return out


def _valid(batch: int, time: int, rng: np.random.Generator) -> np.ndarray:
    """``(batch, time)`` booleans cycling through every padding pattern from a random one."""
    start = int(rng.integers(len(PADDINGS)))
    return np.stack([PADDINGS[(start + b) % len(PADDINGS)](time, rng) for b in range(batch)])


def _inputs(spec: rnnspec.ModelSpec, batch: int, time: int, seed: int) -> np.ndarray:
    """Token ids or features of ``batch`` rows and ``time`` steps, padded where the spec masks."""
    rng = np.random.default_rng(seed)
    valid = _valid(batch, time, rng)
    if spec.input.vocab_size is not None:
        ids = rng.integers(1, spec.input.vocab_size, size=(batch, time))
        if spec.masked:
            return np.where(valid, ids, 0).astype(np.int64)
        ids[rng.random(ids.shape) < 0.2] = 0
        return ids.astype(np.int64)
    x = rng.normal(size=(batch, time, spec.input.features)).astype(np.float32)
    pad = spec.input.mask_value
    if pad is None:
        return x
    x[~valid] = pad
    rows, steps = np.nonzero(valid)
    x[rows[0], steps[0], 0] = pad
    return x


def _export(spec: rnnspec.ModelSpec, weights: dict[str, np.ndarray], tmp_path: Path, **kwargs) -> Path:
    path = tmp_path / "model.onnx"
    assert ox.export_onnx(spec, weights, path, **kwargs) == [path]
    return path


def _session(path: Path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _assert_matches(spec: rnnspec.ModelSpec, tmp_path: Path) -> None:
    weights = _weights(spec)
    session = _session(_export(spec, weights, tmp_path))
    for batch in BATCHES:
        for time in LENGTHS:
            x = _inputs(spec, batch, time, seed=batch * 100 + time)
            (got,) = session.run(None, {"x": x})
            want = nb.forward(spec, weights, x)
            assert got.dtype == np.float32
            assert got.shape == want.shape, (batch, time)
            assert np.max(np.abs(got - want)) <= TOL, (batch, time, np.max(np.abs(got - want)))


# -- the table of specs --------------------------------------------------------------------------------

TOKENS = "input: {vocab_size: 30, seq_len: 6}\n"
EMBED = TOKENS + "embedding: {output_dim: 5}\n"
MASKED = TOKENS + "embedding: {output_dim: 5, mask_zero: true}\n"

CASES: dict[str, str] = {
    "embedding-lstm": EMBED + "recurrent: [{cell: lstm, units: 4}]\nhead: {units: 1, activation: sigmoid}",
    "masked-lstm": MASKED + "recurrent: [{cell: lstm, units: 4}]\nhead: {units: 3, activation: softmax}",
    "masked-lstm-sequences": MASKED + "recurrent: [{cell: lstm, units: 4, return_sequences: true}]",
    "masked-stacked-sequences": MASKED
    + "recurrent:\n"
    + "  - {cell: simple_rnn, units: 3, return_sequences: true}\n"
    + "  - {cell: lstm, units: 4, return_sequences: true}\n"
    + "  - {cell: gru, units: 3, return_sequences: true}",
    "masked-stacked-last": MASKED
    + "recurrent: [{cell: gru, units: 4, return_sequences: true}, {cell: lstm, units: 3}]\nhead: {units: 2}",
    "gru-reset-after": MASKED + "recurrent: [{cell: gru, units: 4, return_sequences: true}]",
    "gru-reset-before": MASKED + "recurrent: [{cell: gru, units: 4, reset_after: false, return_sequences: true}]",
    "gru-reset-before-last": EMBED + "recurrent: [{cell: gru, units: 4, reset_after: false}]",
    "simple-rnn-relu": MASKED + "recurrent: [{cell: simple_rnn, units: 4, activation: relu, return_sequences: true}]",
    "lstm-hard-sigmoid": MASKED + "recurrent: [{cell: lstm, units: 4, recurrent_activation: hard_sigmoid}]",
    "lstm-elu-hard-sigmoid-bidirectional": MASKED
    + "recurrent: [{cell: lstm, units: 3, activation: elu, recurrent_activation: hard_sigmoid, "
    + "bidirectional: true, return_sequences: true}]",
    "gru-linear-hard-sigmoid-bidirectional": EMBED
    + "recurrent: [{cell: gru, units: 3, activation: linear, recurrent_activation: hard_sigmoid, "
    + "bidirectional: true}]",
    "go-backwards": EMBED + "recurrent: [{cell: lstm, units: 4, go_backwards: true, return_sequences: true}]",
    "go-backwards-last": EMBED + "recurrent: [{cell: gru, units: 4, go_backwards: true}]",
    "go-backwards-masked": MASKED + "recurrent: [{cell: lstm, units: 4, go_backwards: true, return_sequences: true}]",
    "go-backwards-masked-last": MASKED + "recurrent: [{cell: simple_rnn, units: 4, go_backwards: true}]",
    "go-backwards-masked-then-forward": MASKED
    + "recurrent: [{cell: gru, units: 3, go_backwards: true, return_sequences: true}, {cell: lstm, units: 3}]",
    "features": "input: {features: 4, seq_len: 6}\nrecurrent: [{cell: simple_rnn, units: 3}]\nhead: {units: 2}",
    "features-mask-value": "input: {features: 3, mask_value: 0.0}\nrecurrent: [{cell: lstm, units: 4}]\n"
    + "head: {units: 1}",
    "features-mask-value-bidirectional": "input: {features: 3, mask_value: -1.0, seq_len: 6}\n"
    + "recurrent: [{cell: gru, units: 3, return_sequences: true, bidirectional: true, merge_mode: concat}]",
    "dropouts": MASKED
    + "recurrent:\n"
    + "  - {spatial_dropout: 0.2}\n"
    + "  - {cell: lstm, units: 4, return_sequences: true, dropout: 0.1, recurrent_dropout: 0.1}\n"
    + "  - {dropout: 0.3}\n"
    + "  - {cell: gru, units: 3}\n"
    + "  - {dropout: 0.5}\n"
    + "head: [{units: 5, activation: relu}, {dropout: 0.5}, {units: 2, activation: softmax}]",
    "head-gelu-selu-swish-softmax": EMBED
    + "recurrent: [{cell: lstm, units: 4}]\n"
    + "head: [{units: 6, activation: gelu}, {units: 5, activation: selu}, {units: 5, activation: swish}, "
    + "{units: 3, activation: softmax}]",
    "head-other-activations": EMBED
    + "recurrent: [{cell: gru, units: 4}]\n"
    + "head: [{units: 5, activation: elu}, {units: 5, activation: softplus}, {units: 5, activation: softsign}, "
    + "{units: 5, activation: hard_sigmoid}, {units: 5, activation: tanh}, {units: 5, activation: exponential}, "
    + "{units: 4, activation: sigmoid}, {units: 3, activation: relu}, {units: 2}]",
    "per-step-head-masked": MASKED
    + "recurrent: [{cell: lstm, units: 4, return_sequences: true}]\n"
    + "head: [{units: 5, activation: gelu}, {units: 3, activation: softmax}]",
    "per-step-head-bidirectional": MASKED
    + "recurrent: [{cell: gru, units: 3, return_sequences: true, bidirectional: true, merge_mode: ave}]\n"
    + "head: {units: 4, activation: swish}",
    "torch-simple-rnn": "convention: torch\n" + MASKED + "recurrent: [{cell: simple_rnn, units: 4}]\nhead: {units: 2}",
    "torch-lstm-bidirectional": "convention: torch\n"
    + MASKED
    + "recurrent: [{cell: lstm, units: 3, return_sequences: true, bidirectional: true, merge_mode: sum}]",
    "torch-gru-reset-before": "convention: torch\n"
    + MASKED
    + "recurrent: [{cell: gru, units: 4, reset_after: false, return_sequences: true}, "
    + "{cell: gru, units: 3, reset_after: true}]",
    "no-bias": MASKED
    + "recurrent: [{cell: lstm, units: 4, use_bias: false, return_sequences: true}, "
    + "{cell: gru, units: 3, use_bias: false, bidirectional: true}]\n"
    + "head: {units: 2, use_bias: false}",
    "torch-no-bias": "convention: torch\n"
    + EMBED
    + "recurrent: [{cell: simple_rnn, units: 4, use_bias: false, go_backwards: true}]",
}

for _mode in ("concat", "sum", "mul", "ave"):
    for _masked in (False, True):
        for _sequences in (False, True):
            CASES[
                f"bidirectional-{_mode}-{'masked' if _masked else 'unmasked'}-{'sequences' if _sequences else 'last'}"
            ] = (MASKED if _masked else EMBED) + (
                f"recurrent: [{{cell: lstm, units: 3, bidirectional: true, merge_mode: {_mode}, "
                f"return_sequences: {str(_sequences).lower()}}}]"
            )
CASES["bidirectional-simple-rnn-masked"] = MASKED + "recurrent: [{cell: simple_rnn, units: 3, bidirectional: true}]"
CASES["bidirectional-stacked-masked"] = MASKED + (
    "recurrent: [{cell: gru, units: 3, bidirectional: true, return_sequences: true, merge_mode: mul}, "
    "{cell: lstm, units: 3, bidirectional: true}]"
)


@pytest.mark.parametrize("body", list(CASES.values()), ids=list(CASES))
def test_export_matches_numpy(body: str, tmp_path: Path) -> None:
    _assert_matches(_spec(body), tmp_path)


def _with_activation(cell: str, field: str, activation: str) -> str:
    return MASKED + f"recurrent: [{{cell: {cell}, units: 3, {field}: {activation}, return_sequences: true}}]"


ACTIVATION_CASES = [
    (cell, field, activation)
    for cell in ("simple_rnn", "lstm", "gru")
    for field in (("activation",) if cell == "simple_rnn" else ("activation", "recurrent_activation"))
    for activation in RECURRENT_ACTIVATIONS
]


@pytest.mark.parametrize(("cell", "field", "activation"), ACTIVATION_CASES)
def test_every_recurrent_activation_is_exact_or_refused(cell: str, field: str, activation: str, tmp_path: Path) -> None:
    """What onnxruntime's CPU kernels compute exactly is exported; every other activation is refused."""
    spec = _spec(_with_activation(cell, field, activation))
    if activation in ox.RECURRENT_ACTIVATIONS:
        _assert_matches(spec, tmp_path)
    else:
        with pytest.raises(rnnspec.RnnspecError, match="ONNX"):
            ox.export_onnx(spec, _weights(spec), tmp_path / "model.onnx")


def test_refused_recurrent_activations() -> None:
    refused = set(RECURRENT_ACTIVATIONS) - set(ox.RECURRENT_ACTIVATIONS)
    assert refused == {"selu", "swish", "exponential", "softplus"}
    assert set(ox.REFUSED_ACTIVATIONS) <= refused


@pytest.mark.parametrize("activation", ["selu", "swish", "exponential", "softplus"])
def test_refusal_message(activation: str, tmp_path: Path) -> None:
    spec = _spec(_with_activation("lstm", "recurrent_activation", activation))
    with pytest.raises(rnnspec.RnnspecError) as info:
        ox.export_onnx(spec, _weights(spec), tmp_path / "model.onnx")
    message = str(info.value)
    assert f"received: recurrent_activation: {activation}" in message
    assert "'recurrent_0'" in message and "LSTM" in message
    assert ("overflows" if activation == "softplus" else "RNN/LSTM/GRU ops have no such") in message
    assert "tanh" in message and "--format torch" in message


def test_onnxruntime_rnn_softplus_overflows() -> None:
    """Why softplus is refused: onnxruntime's RNN kernel computes log(1 + exp(x)), inf for x = 100 (Keras: 100)."""
    helper = onnx.helper
    weight = onnx.numpy_helper.from_array(np.ones((1, 1, 1), np.float32), "W")
    recurrent = onnx.numpy_helper.from_array(np.zeros((1, 1, 1), np.float32), "R")
    node = helper.make_node("RNN", ["x", "W", "R"], ["y"], hidden_size=1, activations=["Softplus"])
    graph = helper.make_graph(
        [node],
        "softplus",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 1])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 1, 1, 1])],
        [weight, recurrent],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.array([[[1.0]]], np.float32)})
    assert abs(float(y.ravel()[0]) - np.logaddexp(0.0, 1.0)) < 1e-6
    (y,) = session.run(None, {"x": np.array([[[100.0]]], np.float32)})
    assert not np.isfinite(y).all()


def test_failed_export_leaves_no_file(tmp_path: Path) -> None:
    spec = _spec(_with_activation("gru", "activation", "selu"))
    target = tmp_path / "model.onnx"
    with pytest.raises(rnnspec.RnnspecError):
        ox.export_onnx(spec, _weights(spec), target)
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"previous")
    with pytest.raises(rnnspec.RnnspecError):
        ox.export_onnx(spec, _weights(spec), target)
    assert target.read_bytes() == b"previous"
    assert list(tmp_path.iterdir()) == [target]


def test_wrong_weights_are_refused_before_writing(tmp_path: Path) -> None:
    spec = _spec(CASES["embedding-lstm"])
    weights = _weights(spec)
    weights.pop("recurrent_0/bias")
    with pytest.raises(rnnspec.RnnspecError, match="missing recurrent_0/bias"):
        ox.export_onnx(spec, weights, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_opset_and_symbolic_axes(tmp_path: Path) -> None:
    spec = _spec(CASES["per-step-head-masked"])
    model = onnx.load(str(_export(spec, _weights(spec), tmp_path)))
    onnx.checker.check_model(model)
    (default,) = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    assert default >= 17
    (x,) = model.graph.input
    (y,) = model.graph.output
    assert x.name == "x" and x.type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert y.name == "y" and y.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    for value in (x, y):
        batch, time, *_ = value.type.tensor_type.shape.dim
        assert batch.dim_param and time.dim_param and not batch.dim_value and not time.dim_value
    assert y.type.tensor_type.shape.dim[2].dim_value == 3
    assert {node.op_type for node in model.graph.node} >= {"LSTM", "TopK", "GatherElements"}


def test_features_input_is_float(tmp_path: Path) -> None:
    spec = _spec(CASES["features-mask-value"])
    model = onnx.load(str(_export(spec, _weights(spec), tmp_path)))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in dims][2] == 3
    assert [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim] == [0, 1]


def test_unmasked_layers_need_no_compaction(tmp_path: Path) -> None:
    spec = _spec(CASES["bidirectional-concat-unmasked-sequences"])
    model = onnx.load(str(_export(spec, _weights(spec), tmp_path)))
    ops = {node.op_type for node in model.graph.node}
    assert "LSTM" in ops and "TopK" not in ops and "GatherElements" not in ops


def test_newer_opset(tmp_path: Path) -> None:
    spec = _spec(CASES["masked-stacked-last"])
    weights = _weights(spec)
    path = _export(spec, weights, tmp_path, opset=20)
    assert onnx.load(str(path)).opset_import[0].version == 20
    x = _inputs(spec, 5, 7, seed=1)
    (got,) = _session(path).run(None, {"x": x})
    assert np.max(np.abs(got - nb.forward(spec, weights, x))) <= TOL


@pytest.mark.parametrize("opset", [16, 10_000, "17", True])
def test_unsupported_opset(opset: object, tmp_path: Path) -> None:
    spec = _spec(CASES["embedding-lstm"])
    with pytest.raises(rnnspec.RnnspecError, match="opset"):
        ox.export_onnx(spec, _weights(spec), tmp_path / "model.onnx", opset=opset)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_missing_onnx_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    spec = _spec(CASES["embedding-lstm"])
    with pytest.raises(rnnspec.RnnspecError, match=r"pip install 'rnnspec\[onnx\]'"):
        ox.export_onnx(spec, _weights(spec), tmp_path / "model.onnx")


def test_published_spec_through_the_cli_proof(tmp_path: Path) -> None:
    """The registry's exporter and ``rnnspec export``'s proof (hard inputs against the reference)."""
    from rnnspec.cli.interop import run_export
    from rnnspec.core.registry import get_exporter

    assert get_exporter("onnx") is ox.export_onnx
    spec = rnnspec.load_spec(REPO / "specs" / "weather_regression.yaml")
    lines: list[str] = []
    assert run_export(spec, _weights(spec), "onnx", tmp_path / "weather.onnx", lines.append), lines
    assert any("ok" in line for line in lines)
