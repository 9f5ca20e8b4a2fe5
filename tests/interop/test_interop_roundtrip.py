"""Round trips and the tutorial paths: every export format comes back (or runs) with the same numbers.

- keras: export → `rnnspec import` of the .keras file → the same canonical weights and spec;
- torch: export → the state dict (PyTorch's own keys) imported with the spec → the same weights;
- onnx: export → onnxruntime → the same outputs as rnnspec (no ONNX importer exists);
- a Keras tutorial model (TensorFlow's text classification with an RNN) and a PyTorch tutorial
  module cross to the other framework and to ONNX in two commands each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rnnspec_backends.keras.model", reason="the keras backend needs the keras extra")
torch = pytest.importorskip("torch")
import keras

import rnnspec
from rnnspec.cli import main
from rnnspec.interop.proof import hard_inputs

TOL = 1e-5

SPEC = """
rnnspec: 1.1
name: roundtrip
input: {vocab_size: 40, seq_len: 10}
embedding: {output_dim: 6, mask_zero: true, name: words}
recurrent:
  - {cell: gru, units: 5, return_sequences: true, bidirectional: true, merge_mode: concat, name: bigru}
  - {dropout: 0.2}
  - {cell: lstm, units: 4, name: top}
head: [{units: 8, activation: relu, name: hidden}, {units: 3, activation: softmax, name: out}]
"""


def _random(spec: rnnspec.ModelSpec, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: (0.4 * rng.normal(size=v.shape)).astype(np.float32) for k, v in rnnspec.initial_weights(spec).items()}


def _layers(spec: rnnspec.ModelSpec) -> list[tuple[str, str, dict]]:
    """Effective name, kind and fields of every layer (an explicit name equal to the default counts as equal)."""
    return [(name, layer.kind, layer.model_dump(exclude={"name"})) for name, layer in spec.stack()]


def test_keras_export_imports_back_to_the_same_spec_and_weights(tmp_path: Path) -> None:
    spec = rnnspec.loads_spec(SPEC)
    weights = _random(spec)
    rnnspec.export(spec, "keras", tmp_path / "m.keras", weights=weights)
    back, back_weights = rnnspec.import_model(tmp_path / "m.keras", name="roundtrip")
    assert _layers(back) == _layers(spec) and back.input == spec.input
    assert back_weights.keys() == weights.keys()
    assert all(np.array_equal(back_weights[k], weights[k]) for k in weights)


def test_onnx_export_of_a_built_model_runs_the_same(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = rnnspec.build(rnnspec.loads_spec(SPEC), "torch", weights=_random(rnnspec.loads_spec(SPEC), 1))
    (path,) = rnnspec.export(model, "onnx", tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = hard_inputs(rnnspec.spec_of(model), seed=3)
    got = session.run(None, {"x": x})[0]
    assert np.max(np.abs(got - rnnspec.predict(model, x))) <= TOL


def _tutorial_keras_model() -> keras.Model:
    """TensorFlow's "Text classification with an RNN" model (the spec tf_text_classification), smaller."""
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int64"),
            layers.Embedding(100, 16, mask_zero=True),
            layers.Bidirectional(layers.LSTM(16)),
            layers.Dense(16, activation="relu"),
            layers.Dense(1),
        ]
    )


def test_a_keras_tutorial_model_crosses_to_onnx_in_two_commands(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    model = _tutorial_keras_model()
    rng = np.random.default_rng(0)
    for w in model.weights:
        w.assign((0.3 * rng.normal(size=tuple(w.shape))).astype("float32"))
    model.save(tmp_path / "text_classifier.keras")
    out = tmp_path / "imported"
    assert main(["import", str(tmp_path / "text_classifier.keras"), "-o", str(out)]) == 0
    assert main(["export", str(out / "spec.yaml"), "--weights", str(out / "weights.safetensors"), "-f", "onnx",
                 "-o", str(tmp_path / "text_classifier.onnx")]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert printed.count(" ok") >= 4, printed
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "text_classifier.onnx"), providers=["CPUExecutionProvider"])
    x = hard_inputs(rnnspec.load_spec(out / "spec.yaml"), seed=8, time=15)
    expected = np.asarray(model(x, training=False))
    assert np.max(np.abs(session.run(None, {"x": x})[0] - expected)) <= TOL


class _TutorialTagger(torch.nn.Module):
    """PyTorch's "Sequence Models and LSTM Networks" tagger (embedding → LSTM → linear tag scores), batch-first."""

    spec = """
rnnspec: 1.1
name: lstm-tagger
input: {vocab_size: 30}
embedding: {output_dim: 6}
recurrent: [{cell: lstm, units: 6, return_sequences: true}]
head: {units: 3}
"""

    def __init__(self) -> None:
        super().__init__()
        self.word_embeddings = torch.nn.Embedding(30, 6)
        self.lstm = torch.nn.LSTM(6, 6, batch_first=True)
        self.hidden2tag = torch.nn.Linear(6, 3)

    def forward(self, sentence: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.word_embeddings(sentence))
        return self.hidden2tag(out)


@pytest.mark.parametrize("fmt", ["keras", "onnx"])
def test_a_pytorch_tutorial_state_dict_crosses_in_two_commands(fmt: str, tmp_path: Path, capsys) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    module = _TutorialTagger().eval()
    torch.save(module.state_dict(), tmp_path / "tagger.pt")
    (tmp_path / "tagger.yaml").write_text(_TutorialTagger.spec)
    out = tmp_path / "imported"
    target = tmp_path / f"tagger.{fmt}"
    assert main(["import", str(tmp_path / "tagger.pt"), "--spec", str(tmp_path / "tagger.yaml"), "-o", str(out)]) == 0
    assert main(["export", str(out / "spec.yaml"), "--weights", str(out / "weights.safetensors"), "-f", fmt,
                 "-o", str(target)]) == 0  # fmt: skip
    assert f"exported {fmt} vs rnnspec numpy" in capsys.readouterr().out
    x = np.random.default_rng(1).integers(0, 30, size=(4, 7))
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    if fmt == "keras":
        got = np.asarray(keras.saving.load_model(target)(x, training=False))
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        got = session.run(None, {"x": x.astype(np.int64)})[0]
    assert np.max(np.abs(got - expected)) <= TOL


def test_torch_export_state_dict_imports_back_to_the_same_weights(tmp_path: Path) -> None:
    from rnnspec.core.weights import to_keras_convention

    spec = rnnspec.loads_spec(SPEC)
    weights = _random(spec, 2)
    written = rnnspec.export(spec, "torch", tmp_path / "m.py", weights=weights)
    state = next(p for p in written if p.suffix == ".safetensors")
    back_spec, back = rnnspec.import_model(state, spec)
    assert back_spec.convention == "torch"
    _, as_keras = to_keras_convention(back_spec, back)
    assert as_keras.keys() == weights.keys()
    assert all(np.array_equal(as_keras[k], weights[k]) for k in weights)
